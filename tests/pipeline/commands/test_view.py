"""``python -m pipeline view FILE`` as a user runs it: a real child serving on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.export.splat_format import write_splat
from pipeline.formats.arrays import SplatArrays
from pipeline.formats.registry import write_splats
from pipeline.preview.render import FrameRenderer
from pipeline.render import get_rasterizer
from pipeline.view.server import ViewedFile
from tests.support.browser import chromium_page
from tests.support.images import png_rgb, psnr
from tests.support.scenes import room_splats


@pytest.fixture
def viewer_url(tmp_path: Path) -> Iterator[str]:
    write_splat(tmp_path / "room.splat", room_splats(2000))
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "view", str(tmp_path / "room.splat"),
         "--port", "0", "--no-browser", "--up=-y"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("viewer: http://127.0.0.1:"), line
        yield line.split(": ", 1)[1].strip()
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_the_standalone_viewer_serves_the_page_the_file_and_renders(viewer_url: str) -> None:
    with httpx.Client(base_url=viewer_url, timeout=60) as client:
        scene = client.get("/scene").json()
        ranged = client.get("/files/room.splat", headers={"Range": "bytes=0-31"})
        other = client.get("/files/secret.txt")
        jpeg = client.get("/render", params={"width": 64, "height": 36, "yaw": 90})
        page = client.get("/")
    assert scene["splat"] == {"url": "/files/room.splat", "file_type": "splat", "count": 2000}
    assert scene["camera"]["up"] == [0.0, -1.0, 0.0] and len(scene["camera"]["c2w"]) == 16
    assert ranged.status_code == 206 and len(ranged.content) == 32
    assert other.status_code == 404
    assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
    assert page.status_code in (200, 503)  # 503 (how to build it) without `make viewer`
    assert "make viewer" in page.text if page.status_code == 503 else "viewer.js" in page.text


def test_a_file_it_cannot_view_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "view", str(tmp_path / "notes.txt"), "--no-browser"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot view notes.txt: expected one of .ply, .splat" in done.stderr


def _serve(path: Path, *options: str) -> Iterator[str]:
    """``python -m pipeline view PATH --port 0 --no-browser`` running; yields its URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "view", str(path), "--port", "0", "--no-browser",
         *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("viewer: http://127.0.0.1:"), line
        yield line.split(": ", 1)[1].strip()
    finally:
        child.terminate()
        child.wait(timeout=30)


@pytest.fixture
def room_sog(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "room.sog"
    splats = room_splats(4000)
    write_splats(path, SplatArrays(*(t.numpy() for t in splats.tensors())))
    return path, len(splats)


@pytest.fixture
def sog_url(room_sog: tuple[Path, int]) -> Iterator[str]:
    yield from _serve(room_sog[0], "--up=-y")


@pytest.mark.browser
@pytest.mark.anyio
async def test_a_sog_file_is_drawn_by_the_page_as_the_pipeline_renders_it(
    room_sog: tuple[Path, int], sog_url: str
) -> None:
    path, count = room_sog
    async with chromium_page(800, 450) as page:
        await page.goto(sog_url)
        await page.wait_for_function(
            "['ready', 'error'].includes(document.body.dataset.state)", timeout=120_000
        )
        state = await page.evaluate("[document.body.dataset.state, document.body.dataset.splats]")
        shot = png_rgb(await page.locator("#view").screenshot())
    assert state == ["ready", str(count)]
    viewed = ViewedFile.open(path, np.array([0.0, -1.0, 0.0]))
    assert viewed.loaded.file_type == "pcsogszip"
    height, width = shot.shape[:2]
    camera = viewed.camera.path_camera(viewed.camera.c2w, width, height)
    want = FrameRenderer(viewed.loaded.splats, get_rasterizer("cpu")).render(camera)
    agreement = psnr(shot, want)
    print(f"browser (SOG) vs pipeline render: {agreement:.1f} dB")
    assert want.std() > 10 and agreement >= 20.0
