"""A watch job resumes across a node killed outright (``python -m app`` + the real pipeline).

The node is killed with SIGKILL mid-training of a watch job; the restarted node finds the input
still in ``inbox/``, queues it under the same task id (its content hash) onto the job folder the
killed run left, and training continues from the last checkpoint (``resumed_from`` > 0).
"""

from __future__ import annotations

import json
import shutil
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.watch.test_watch_node import WAIT_S, WatchNode, watch_node
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.support.waiting import alive, eventually_sync

pytestmark = pytest.mark.slow

#: Training steps: long enough that training dominates a run, short for a 2-core CI machine.
STEPS = 300
#: Where the node is killed, as a fraction of the training steps.
KILL_AT = 0.7


def drop_job(inbox: Path, name: str, scene_source: Path) -> None:
    """Copies a synthetic Auki job folder beside the inbox, then renames it in."""
    staging = inbox.parent / f".staging-{name}"
    shutil.copytree(scene_source, staging)
    staging.rename(inbox / name)


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (the pipeline child); Linux ``/proc``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def progress_of(node: WatchNode, job_id: str) -> dict[str, Any]:
    try:
        body = node.job(job_id)
    except httpx.TransportError:
        return {}
    progress: dict[str, Any] = body.get("progress") or {}
    return progress


def test_a_watch_job_killed_mid_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    make_tiny_job(scene)
    env = {"SPLATTER_ITERATIONS": str(STEPS), "PROGRESS_MIN_INTERVAL_SECS": "0"}

    with watch_node(tmp_path, **env) as node:
        drop_job(node.watch / "inbox", "room", scene)
        eventually_sync(lambda: node.jobs() != [], within_s=WAIT_S)
        (job,) = node.jobs()
        eventually_sync(
            lambda: progress_of(node, job["id"]).get("step", 0) >= KILL_AT * STEPS, within_s=600
        )
        children = children_of(node.proc.pid)
        node.proc.send_signal(signal.SIGKILL)  # no shutdown: the folder stays "running"
        node.proc.wait()
        killed_at = datetime.now(UTC)
        eventually_sync(lambda: not any(alive(pid) for pid in children), within_s=30)
    folder = tmp_path / "tasks" / job["task_id"]
    marker = json.loads((folder / ".resume.json").read_text())
    assert marker["state"] == "running"  # as the killed node left it
    assert (folder / "out" / "checkpoints").is_dir()
    assert node.entries("inbox") == ["room"]

    with watch_node(tmp_path, **env) as node:
        eventually_sync(lambda: len(node.jobs()) == 2, within_s=WAIT_S)
        resumed = node.jobs()[0]
        seen: set[int] = set()

        def done() -> bool:
            progress = progress_of(node, resumed["id"])
            if isinstance(progress.get("resumed_from"), int):
                seen.add(progress["resumed_from"])
            return node.job(resumed["id"])["state"] not in ("queued", "running")

        eventually_sync(done, within_s=600)
        finished = node.job(resumed["id"])
        killed = node.job(job["id"])
        (outbox,) = node.entries("outbox")
        report = json.loads((node.watch / "outbox" / outbox / "report.json").read_text())

        # The same capture, uninterrupted, on the same node (other bytes: no duplicate).
        (scene / "notes.txt").write_text("a second copy")
        drop_job(node.watch / "inbox", "again", scene)
        (baseline,) = (j for j in node.finished(3) if j["id"] not in (job["id"], resumed["id"]))
        full_s = _job_seconds(baseline)

    assert finished["state"] == "succeeded", finished["error"]
    first_s = (killed_at - datetime.fromisoformat(killed["started_at"])).total_seconds()
    second_s = _job_seconds(finished)
    assert resumed["task_id"] == job["task_id"]  # the same content, the same folder
    assert (killed["state"], killed["error"]) == ("failed", "node restarted")
    (resumed_from,) = seen  # the last periodic checkpoint: every tenth of the run
    assert KILL_AT * STEPS - STEPS // 10 <= resumed_from < STEPS
    assert report["training"]["resumed_from"] == resumed_from
    assert not folder.exists()  # success: the folder goes
    assert baseline["state"] == "succeeded", baseline["error"]
    print(f"resumed from step {resumed_from} of {STEPS}")
    print(f"killed run {first_s:.1f} s + resumed run {second_s:.1f} s; one full run {full_s:.1f} s")


def _job_seconds(job: dict[str, Any]) -> float:
    """A finished job's started → finished time, seconds."""
    started = datetime.fromisoformat(job["started_at"])
    finished = datetime.fromisoformat(job["finished_at"])
    return (finished - started).total_seconds()
