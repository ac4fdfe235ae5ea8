"""The viewer page in real Chromium (SwiftShader WebGL2), against the node over loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from pipeline.preview.render import FrameRenderer
from pipeline.render import get_rasterizer
from pipeline.view.job_folder import frame_job_folder
from tests.app.api.nodes import running_node
from tests.app.factories import make_settings
from tests.app.viewer.jobs import services_of, succeeded_room_job
from tests.support.browser import chromium_page
from tests.support.images import png_rgb, psnr

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

TOKEN = "browser-test-token"


async def _ready(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for_function(
        "['ready', 'error', 'empty'].includes(document.body.dataset.state)", timeout=120_000
    )
    assert await page.evaluate("document.body.dataset.state") == "ready"


async def test_the_page_opens_on_the_preview_s_first_frame_and_dragging_turns_it(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, splatter_api_token=TOKEN)
    async with running_node(settings) as node, chromium_page(800, 450) as page:
        services = services_of(node.app)
        job = succeeded_room_job(services, 9000)
        await _ready(page, f"{node.url}/jobs/{job.id}/view?token={TOKEN}")
        assert TOKEN not in page.url  # the token became a cookie
        assert await page.evaluate("document.body.dataset.splats") == "9000"
        downloads = await page.locator("#downloads a").evaluate_all("a => a.map(x => x.download)")
        numbers = await page.locator("#numbers").inner_text()
        canvas = page.locator("#view")
        shot = png_rgb(await canvas.screenshot())
        box = await canvas.bounding_box()
        assert box is not None
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(cx, cy)
        await page.mouse.down()
        await page.mouse.move(cx + 150, cy + 20, steps=8)
        await page.mouse.up()
        await page.wait_for_timeout(500)
        turned = png_rgb(await canvas.screenshot())
        framed = frame_job_folder(services.viewer_outputs.kept_root / job.id)
    assert framed is not None
    assert downloads == [
        "splat_rot.splat",
        "splat.ply",
        "splat_rot.ply",
        "splat_rot.sog",
        "preview_camera_path.json",
    ]
    assert "held-out PSNR" in numbers and "27.5 dB" in numbers
    height, width = shot.shape[:2]
    want = FrameRenderer(framed.splats, get_rasterizer("cpu")).render(
        framed.camera.path_camera(framed.camera.c2w, width, height)
    )
    agreement = psnr(shot, want)
    print(f"browser vs pipeline render at the first preview pose: {agreement:.1f} dB")
    assert want.std() > 10 and agreement >= 20.0
    assert psnr(turned, shot) < agreement - 5.0  # the drag moved the camera


async def test_without_webgl2_the_page_shows_the_node_s_render_and_drags_it(
    tmp_path: Path,
) -> None:
    async with running_node(make_settings(tmp_path)) as node, chromium_page(640, 360) as page:
        services = services_of(node.app)
        job = succeeded_room_job(services, 3000)
        await _ready(page, f"{node.url}/jobs/{job.id}/view?fallback=1")
        image = page.locator("#fallback")
        first_src = await image.get_attribute("src")
        assert first_src is not None and "yaw=0.00" in first_src
        shown = png_rgb(await image.screenshot())
        box = await image.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 100, box["y"] + 100)
        await page.mouse.down()
        await page.mouse.move(box["x"] + 250, box["y"] + 100, steps=5)
        await page.mouse.up()
        await page.wait_for_function(
            "document.getElementById('fallback').getAttribute('src').includes('yaw=-60.00')"
            " && document.getElementById('fallback').complete",
            timeout=120_000,  # rendered at the lowest CPU priority
        )
        turned_src = await image.get_attribute("src")
        framed = frame_job_folder(services.viewer_outputs.kept_root / job.id)
    assert framed is not None and turned_src is not None and "yaw=-60.00" in turned_src
    height, width = shown.shape[:2]
    want = FrameRenderer(framed.splats, get_rasterizer("cpu")).render(
        framed.camera.path_camera(framed.camera.c2w, width, height)
    )
    assert psnr(shown, want) >= 25.0
