"""``python -m pipeline view FILE`` as a user runs it: a real child serving on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.export.splat_format import write_splat
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
