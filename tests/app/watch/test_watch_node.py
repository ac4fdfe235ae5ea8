"""The watch door over a real temp folder and a real node process (``python -m app``).

The pipeline child is the stub pipeline (it checks that the capture was staged and writes the
outputs): these tests are about the door, not about training. The corrupt-input test runs the
real ``python -m pipeline train``, whose layout detection refuses the capture.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app import PROJECT_ROOT
from demo import free_port
from tests.app.factories import stub_command
from tests.app.test_main import node_env
from tests.app.watch.captures import FRAMES, drop, write_capture
from tests.support.waiting import eventually_sync

STABLE_S = 0.5
WAIT_S = 120.0  # generous: a node process starts slowly on a busy 2-core CI machine


@dataclass
class WatchNode:
    url: str
    watch: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def jobs(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/jobs", timeout=5)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/jobs/{job_id}", timeout=5).json()
        return body

    def finished(self, count: int) -> list[dict[str, Any]]:
        """Waits until ``count`` jobs have ended; returns all jobs, oldest first."""
        eventually_sync(
            lambda: sum(j["state"] not in ("queued", "running") for j in self.jobs()) >= count,
            within_s=WAIT_S,
        )
        return self.jobs()[::-1]

    def entries(self, folder: str) -> list[str]:
        return sorted(p.name for p in (self.watch / folder).iterdir())

    def logged(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@contextmanager
def watch_node(tmp_path: Path, *actions: str, **env: str) -> Iterator[WatchNode]:
    """A node process with ``WATCH_DIR=tmp_path/watch`` and the stub pipeline doing
    ``actions`` (no actions: the real pipeline); stopped with SIGTERM after."""
    port = free_port()
    defaults = {"WATCH_STABLE_SECS": str(STABLE_S), "PROGRESS_MIN_INTERVAL_SECS": "0"}
    settings = node_env(
        tmp_path,
        SPLATTER_PORT=str(port),
        WATCH_DIR=str(tmp_path / "watch"),
        PIPELINE_COMMAND=stub_command(*actions) if actions else "",
        **{**defaults, **env},
    )
    log = tmp_path / f"node-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app"], env=settings, stderr=out, cwd=PROJECT_ROOT
        )
    node = WatchNode(f"http://127.0.0.1:{port}", tmp_path / "watch", log, proc)
    try:
        eventually_sync(lambda: _ready(node, proc), within_s=WAIT_S)
        yield node
    finally:
        if proc.poll() is None:  # a test may have killed it
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(node: WatchNode, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, node.log.read_text()[-3000:]
    try:
        checks: dict[str, str] = httpx.get(f"{node.url}/ready", timeout=1).json()["checks"]
    except httpx.TransportError:
        return False
    return checks.get("watch") == "ok"


def test_a_dropped_capture_becomes_a_job_and_its_outputs_land_in_the_outbox(
    tmp_path: Path,
) -> None:
    with watch_node(tmp_path, f"require-file:{FRAMES}", "write-outputs") as node:
        drop(node.watch / "inbox", "living room")
        (job,) = node.finished(1)
        ready = httpx.get(f"{node.url}/ready", timeout=5).json()
    assert (job["source"], job["state"]) == ("watch", "succeeded"), job["error"]
    (outbox,) = node.entries("outbox")
    assert outbox.startswith("living_room-") and outbox.endswith("Z")
    outputs = sorted(p.name for p in (node.watch / "outbox" / outbox).iterdir())
    assert outputs == ["preview.mp4", "preview_angle.jpg", "preview_top.jpg", "splat_rot.splat"]
    (processed,) = node.entries("processed")
    assert (node.watch / "processed" / processed / FRAMES).read_bytes() == b"frames-of-scan-1"
    assert node.entries("inbox") == [] and node.entries("error") == []
    assert list((tmp_path / "tasks").iterdir()) == []  # the job folder is gone
    assert ready["mode"]["watch"] is True and ready["checks"]["watch"] == "ok"
    queued = [e for e in node.logged() if e["message"] == "watch job queued"]
    assert queued[0]["input"] == "living room" and queued[0]["latency_ms"] >= 0


def test_a_capture_still_being_written_is_not_picked_up_early(tmp_path: Path) -> None:
    stable_s = 3.0  # far above the 0.1 s between two writes, even on a loaded machine
    with watch_node(
        tmp_path, f"require-file:{FRAMES}", "write-outputs", WATCH_STABLE_SECS=str(stable_s)
    ) as node:
        capture = write_capture(node.watch / "inbox" / "slow")
        frames = capture / FRAMES
        appends = round(2 * stable_s / 0.1)  # it keeps growing for twice the quiet period
        with frames.open("ab") as video:
            for _ in range(appends):
                video.write(b"more-frames")
                video.flush()
                time.sleep(0.1)
                assert node.jobs() == []
        (job,) = node.finished(1)
    assert job["state"] == "succeeded", job["error"]
    (processed,) = node.entries("processed")
    assert (node.watch / "processed" / processed / FRAMES).read_bytes() == (
        b"frames-of-scan-1" + b"more-frames" * appends
    )


def test_a_corrupt_input_lands_in_error_with_its_reason(tmp_path: Path) -> None:
    with watch_node(tmp_path) as node:  # the real pipeline
        junk = node.watch / ".junk"
        junk.mkdir()
        (junk / "notes.txt").write_text("not a capture")
        junk.rename(node.watch / "inbox" / "junk")
        jobs = node.finished(2)
        eventually_sync(lambda: node.entries("error") != [], within_s=WAIT_S)
    assert [j["state"] for j in jobs] == ["failed", "failed"]  # WATCH_MAX_ATTEMPTS = 2
    (folder,) = node.entries("error")
    assert folder.startswith("junk_")
    report = (node.watch / "error" / folder / "error.txt").read_text()
    assert "reason: runner failed: python job failed: status=Some(1): no capture found in " in (
        report
    )
    assert "(found: notes.txt); expected one of: COLMAP project" in report
    assert "attempts: 2" in report and "time: 20" in report
    assert (node.watch / "error" / folder / "input" / "notes.txt").read_text() == "not a capture"
    assert node.entries("inbox") == [] and node.entries("outbox") == []


def test_a_duplicate_is_skipped_with_a_log_line(tmp_path: Path) -> None:
    with watch_node(tmp_path, "write-outputs") as node:
        drop(node.watch / "inbox", "first")
        (done,) = node.finished(1)
        drop(node.watch / "inbox", "again")
        eventually_sync(lambda: node.entries("error") != [], within_s=WAIT_S)
        jobs = node.jobs()
        logged = node.logged()
    assert len(jobs) == 1 and done["state"] == "succeeded"
    (folder,) = node.entries("error")
    report = (node.watch / "error" / folder / "error.txt").read_text()
    assert f"reason: duplicate: the same content as job {done['id']} (succeeded)" in report
    skipped = [e for e in logged if e["message"] == "watch: skipped a duplicate input"]
    assert skipped[0]["input"] == "again" and skipped[0]["job"] == done["id"]


def test_a_restart_mid_job_picks_the_input_up_again(tmp_path: Path) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    actions = (f"touch:{started}", f"wait-file:{go}", "write-outputs")
    with watch_node(tmp_path, *actions) as node:
        drop(node.watch / "inbox", "room")
        eventually_sync(started.exists, within_s=WAIT_S)
    # the node stopped (SIGTERM) in the middle of the job; the input is still in the inbox
    assert node.entries("inbox") == ["room"]
    (kept,) = (tmp_path / "tasks").iterdir()  # and its job folder is kept for a resume
    marker = json.loads((kept / ".resume.json").read_text())
    assert (marker["state"], marker["reason"]) == ("interrupted", "node shutting down")
    started.unlink()
    with watch_node(tmp_path, *actions) as node:
        eventually_sync(started.exists, within_s=WAIT_S)
        go.touch()
        jobs = node.finished(2)
    assert [(j["source"], j["state"]) for j in jobs] == [
        ("watch", "cancelled"), ("watch", "succeeded"),
    ]  # fmt: skip
    assert jobs[0]["error"] == "task cancelled: python execution"  # stopped by SIGTERM
    assert jobs[0]["task_id"] == jobs[1]["task_id"] == kept.name  # the same folder, resumed
    assert node.entries("inbox") == [] and len(node.entries("outbox")) == 1
    assert list((tmp_path / "tasks").iterdir()) == []  # success: the folder goes
