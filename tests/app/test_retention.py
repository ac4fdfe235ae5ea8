"""Job folders kept for a resume: the marker, start-up, expiry and eviction under disk pressure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from app.runner import cleanup_tasks_root
from app.runner.retention import (
    MARKER,
    evict_oldest,
    mark_interrupted,
    mark_running,
    read_marker,
    settle_at_start_up,
    sweep_expired,
)

HOUR = 3600.0


def job_folder(tasks_root: Path) -> Path:
    folder = tasks_root / str(uuid.uuid4())
    (folder / "refined" / "splatter").mkdir(parents=True)
    (folder / "refined" / "splatter" / "splat_rot.splat").write_bytes(b"\x01" * 32)
    return folder


def kept(tasks_root: Path, interrupted_at: float, reason: str = "lease lost") -> Path:
    folder = job_folder(tasks_root)
    mark_running(folder, folder.name, now=interrupted_at - 10)
    mark_interrupted(folder, reason, now=interrupted_at)
    return folder


def names(tasks_root: Path) -> set[str]:
    return {p.name for p in tasks_root.iterdir()}


def test_the_marker_round_trips_and_running_reports_what_was_kept(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    assert read_marker(folder) is None
    assert mark_running(folder, "task-1", now=100.0) is None
    mark_interrupted(folder, "node shutting down", now=200.0)
    marker = read_marker(folder)
    assert marker is not None
    assert (marker.task_id, marker.state, marker.reason, marker.updated_at) == (
        "task-1", "interrupted", "node shutting down", 200.0,
    )  # fmt: skip
    before = mark_running(folder, "task-1", now=300.0)
    assert before == marker
    assert json.loads((folder / MARKER).read_text())["state"] == "running"
    assert [p.name for p in folder.iterdir() if p.name.startswith(MARKER)] == [MARKER]


def test_an_unreadable_marker_counts_as_none(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    for text in ("{not json", '{"state": "paused", "task_id": "t", "updated_at": 1}', "[]"):
        (folder / MARKER).write_text(text)
        assert read_marker(folder) is None


def test_start_up_cleanup_removes_unmarked_folders_only(tmp_path: Path) -> None:
    stale = job_folder(tmp_path)
    resumable = kept(tmp_path, interrupted_at=1000.0)
    assert cleanup_tasks_root(tmp_path, cleanup_disabled=False) == [stale]
    assert names(tmp_path) == {resumable.name}


def test_start_up_marks_a_killed_nodes_folder_interrupted_from_now_and_drops_expired_ones(
    tmp_path: Path,
) -> None:
    now = 1_000_000.0
    killed = job_folder(tmp_path)
    mark_running(killed, killed.name, now=now - 100 * HOUR)  # running when the node died
    old = kept(tmp_path, interrupted_at=now - 25 * HOUR)
    young = kept(tmp_path, interrupted_at=now - 23 * HOUR)
    settle_at_start_up(tmp_path, 24 * HOUR, now=now)
    assert names(tmp_path) == {killed.name, young.name}
    marker = read_marker(killed)
    assert marker is not None
    assert (marker.state, marker.reason, marker.updated_at) == (
        "interrupted",
        "node restarted",
        now,
    )
    assert not old.exists()


def test_zero_retention_keeps_nothing(tmp_path: Path) -> None:
    folder = kept(tmp_path, interrupted_at=500.0)
    assert sweep_expired(tmp_path, 0.0, now=500.0) == [folder]
    assert names(tmp_path) == set()


def test_the_sweep_spares_the_folder_in_use_and_running_folders(tmp_path: Path) -> None:
    current = kept(tmp_path, interrupted_at=0.0)
    running = job_folder(tmp_path)
    mark_running(running, running.name, now=0.0)
    assert sweep_expired(tmp_path, HOUR, now=10 * HOUR, keep=current) == []
    assert names(tmp_path) == {current.name, running.name}


def test_disk_pressure_evicts_oldest_first_until_enough_and_never_the_current_one(
    tmp_path: Path,
) -> None:
    current = kept(tmp_path, interrupted_at=10.0)  # the oldest, but the one about to run
    first, second, third = (kept(tmp_path, interrupted_at=t) for t in (20.0, 30.0, 40.0))
    evicted = evict_oldest(tmp_path, lambda: not first.exists() and not second.exists(), current)
    assert evicted == [first, second]
    assert names(tmp_path) == {current.name, third.name}
    assert evict_oldest(tmp_path, lambda: False, current) == [third]
    assert names(tmp_path) == {current.name}
