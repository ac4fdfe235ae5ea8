"""The viewer routes over loopback HTTP: files (Range, ETag), auth, SSE, fallback renders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from emulator import EmulatorServer
from pipeline.preview.render import FrameRenderer
from pipeline.render import get_rasterizer
from pipeline.view import page
from pipeline.view.job_folder import frame_job_folder
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings
from tests.app.viewer.jobs import services_of, succeeded_room_job

pytestmark = pytest.mark.anyio

TOKEN = "viewer-test-token"


def _sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append(fields)
    return events


@pytest.fixture
def built_viewer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend ``make viewer`` ran (the pages only need the marker; assets are not fetched)."""
    marker = tmp_path / "built"
    marker.write_text("")
    monkeypatch.setattr(page, "_BUILT_MARKER", marker)


async def test_a_pushed_job_s_outputs_stay_viewable_after_its_folder_is_gone(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = make_settings(tmp_path, "progress:3", "write-outputs")
    body = push_envelope(emulator, emulated_scene(emulator))
    async with running_node(settings) as node:
        job = await node.push(body)
        done = await node.wait_state(job["id"])
        assert done["state"] == "succeeded", done
        base = f"/jobs/{job['id']}"
        video = await node.client.get(f"{base}/files/preview.mp4")
        ranged = await node.client.get(f"{base}/files/preview.mp4", headers={"Range": "bytes=9-26"})
        again = await node.client.get(
            f"{base}/files/preview.mp4", headers={"If-None-Match": video.headers["etag"]}
        )
        other = await node.client.get(f"{base}/files/checkpoint.pt")
        live = await node.client.get(f"{base}/files/live.splat")
        scene = (await node.client.get(f"{base}/scene")).json()
    assert not (tmp_path / "tasks" / body["task"]["id"]).exists()  # the job folder is gone
    assert video.status_code == 200 and video.content == b"mp4-video" * 16
    assert video.headers["content-type"] == "video/mp4"
    assert video.headers["accept-ranges"] == "bytes"
    assert ranged.status_code == 206 and ranged.content == (b"mp4-video" * 16)[9:27]
    assert ranged.headers["content-range"] == "bytes 9-26/144"
    assert again.status_code == 304 and again.content == b""
    assert other.status_code == 404 and live.status_code == 404
    names = [f["name"] for f in scene["files"]]
    assert names == ["splat_rot.splat", "preview.mp4", "preview_top.jpg", "preview_angle.jpg"]
    assert scene["previews"]["video"] == f"{base}/files/preview.mp4"
    assert scene["job"]["state"] == "succeeded" and scene["events_url"] == f"{base}/events"


async def test_the_event_stream_replays_after_last_event_id_and_ends_with_the_state(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = make_settings(tmp_path, "progress:3", "write-splat")
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, emulated_scene(emulator)))
        await node.wait_state(job["id"])
        url = f"/jobs/{job['id']}/events"
        whole = await node.client.get(url)
        resumed = await node.client.get(url, headers={"Last-Event-ID": "3"})
        by_query = await node.client.get(f"{url}?last_event_id=3")
        stored = (await node.job(job["id"]))["events"]
    assert whole.headers["content-type"].startswith("text/event-stream")
    events = _sse(whole.text)
    logs = [e for e in events if e["event"] == "log"]
    assert [int(e["id"]) for e in logs] == [e["seq"] for e in stored]
    assert events[0]["event"] == "job" and events[-1]["event"] == "end"
    end = json.loads(events[-1]["data"])
    assert end["state"] == "succeeded" and end["metrics"]["psnr"] == 21.5
    resumed_ids = [int(e["id"]) for e in _sse(resumed.text) if e["event"] == "log"]
    assert resumed_ids == [e["seq"] for e in stored if e["seq"] > 3]
    assert by_query.text == resumed.text


async def _get(url: str, path: str, cookie: str | None = None, **headers: str) -> httpx.Response:
    """One request from a fresh client (no cookie jar carried over)."""
    cookies = {"splatter_viewer": cookie} if cookie is not None else None
    async with httpx.AsyncClient(base_url=url, cookies=cookies) as client:
        return await client.get(path, headers=headers)


async def test_with_a_token_a_browser_gets_in_once_by_query_then_by_cookie(
    tmp_path: Path, built_viewer: None
) -> None:
    settings = make_settings(tmp_path, splatter_api_token=TOKEN)
    async with running_node(settings) as node:
        job = succeeded_room_job(services_of(node.app), 500)
        view = f"/jobs/{job.id}/view"
        anonymous = await _get(node.url, view)
        wrong = await _get(node.url, f"{view}?token=nope")
        entry = await _get(node.url, f"{view}?token={TOKEN}&x=1")
        cookie = entry.cookies.get("splatter_viewer") or ""
        with_cookie = await _get(node.url, view, cookie)
        forged = await _get(node.url, view, TOKEN)
        bearer = await _get(node.url, f"/jobs/{job.id}/scene", Authorization=f"Bearer {TOKEN}")
        index = await _get(node.url, "/viewer", cookie)
        index_anonymous = await _get(node.url, "/viewer")
        file_anonymous = await _get(node.url, f"/jobs/{job.id}/files/splat_rot.splat")
        events_anonymous = await _get(node.url, f"/jobs/{job.id}/events")
        asset = await _get(node.url, "/viewer/assets/viewer.js")
    for refused in (anonymous, wrong, forged, index_anonymous, file_anonymous, events_anonymous):
        assert refused.status_code == 401, refused.url
    assert entry.status_code == 303 and entry.headers["location"] == f"{view}?x=1"
    set_cookie = entry.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/" in set_cookie
    assert cookie and TOKEN not in cookie
    assert with_cookie.status_code == 200 and "viewer.js" in with_cookie.text
    assert TOKEN not in with_cookie.text
    assert bearer.status_code == 200 and bearer.json()["splat"]["count"] > 0
    assert index.status_code == 200 and f"/jobs/{job.id}/view" in index.text
    assert "27.50 dB" in index.text and TOKEN not in index.text
    assert asset.status_code == 200 and "dataset.state" in asset.text


async def test_without_a_token_loopback_gets_in(tmp_path: Path, built_viewer: None) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        job = succeeded_room_job(services_of(node.app), 500)
        response = await node.client.get(f"/jobs/{job.id}/view")
        missing = await node.client.get("/jobs/no-such-job/view")
    assert response.status_code == 200 and f"/jobs/{job.id}/scene" in response.text
    assert missing.status_code == 404


async def test_an_unbuilt_viewer_answers_503_saying_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page, "_BUILT_MARKER", tmp_path / "absent")
    async with running_node(make_settings(tmp_path)) as node:
        job = succeeded_room_job(services_of(node.app), 500)
        index = await node.client.get("/viewer")
        view = await node.client.get(f"/jobs/{job.id}/view")
        vendor = await node.client.get("/viewer/assets/vendor/three/build/three.module.js")
        scene = await node.client.get(f"/jobs/{job.id}/scene")
    for response in (index, view, vendor):
        assert response.status_code == 503 and "make viewer" in response.text
    assert scene.status_code == 200  # the data routes work without the page


async def test_the_render_route_returns_the_pipeline_s_render_of_that_pose(
    tmp_path: Path,
) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        services = services_of(node.app)
        job = succeeded_room_job(services, 3000)
        query = {"yaw": 30, "pitch": 20, "width": 160, "height": 90}
        # Rendered at the lowest CPU priority: on a busy machine it waits for idle CPU.
        response = await node.client.get(f"/jobs/{job.id}/render", params=query, timeout=300)
        bad = await node.client.get(f"/jobs/{job.id}/render", params={"pitch": 120})
        folder = services.viewer_outputs.kept_root / job.id
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert bad.status_code == 422 and "pitch" in bad.text
    framed = frame_job_folder(folder)
    assert framed is not None
    c2w = framed.camera.pose(30.0, 20.0, framed.camera.distance)
    want = FrameRenderer(framed.splats, get_rasterizer("cpu")).render(
        framed.camera.path_camera(c2w, 160, 90)
    )
    got = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    mse = ((got.astype(float) - want.astype(float)) ** 2).mean()
    assert want.std() > 10 and 10 * np.log10(255**2 / mse) > 30.0


async def test_the_scene_of_a_job_without_outputs_says_why(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        job = succeeded_room_job(services_of(node.app), 500)
        folder = services_of(node.app).viewer_outputs.kept_root / job.id
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        scene = (await node.client.get(f"/jobs/{job.id}/scene")).json()
        render = await node.client.get(f"/jobs/{job.id}/render")
    assert scene["splat"] is None and "not kept" in scene["message"]
    assert render.status_code == 404


async def test_a_snapshot_event_is_announced_with_the_file_to_reload(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        store = services_of(node.app).store
        job = succeeded_room_job(services_of(node.app), 500)
        event = {"level": "info", "stage": "python", "message": "training snapshot",
                 "snapshot": "live.splat", "step": 40, "gaussians": 900}  # fmt: skip
        seq = store.add_event(job.id, event)
        stream = await node.client.get(f"/jobs/{job.id}/events")
    snapshots = [e for e in _sse(stream.text) if e["event"] == "snapshot"]
    assert [int(e["id"]) for e in snapshots] == [seq]
    data = json.loads(snapshots[0]["data"])
    assert data["url"] == f"/jobs/{job.id}/files/live.splat"
    assert (data["step"], data["gaussians"], data["seq"]) == (40, 900, seq)
