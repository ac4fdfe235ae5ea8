"""Which files a job serves, and the kept copies of succeeded jobs' outputs."""

from __future__ import annotations

import os
from pathlib import Path

from app.records import JobRecord
from app.viewer.outputs import JobOutputs


def _record(state: str, task_id: str = "task-1") -> JobRecord:
    return JobRecord(
        id="job-1", source="push", task_id=task_id, job_id=None, domain_id=None,
        capability="/splatter/colmap/v1", state=state,  # type: ignore[arg-type]
        created_at="2026-01-01T00:00:00.000Z", updated_at="2026-01-01T00:00:00.000Z",
    )  # fmt: skip


def _job_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks" / "task-1" / "refined" / "splatter"
    folder.mkdir(parents=True)
    for name in ("splat_rot.splat", "preview.mp4", "live.splat", "checkpoint.pt", "live.json"):
        (folder / name).write_bytes(name.encode())
    return folder


def test_a_running_job_serves_its_outputs_and_snapshot_from_its_folder(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    outputs = JobOutputs(tmp_path / "tasks", tmp_path / "data", 24)
    running = _record("running")
    assert outputs.file(running, "live.splat") == folder / "live.splat"
    assert outputs.file(running, "preview.mp4") == folder / "preview.mp4"
    for name in ("checkpoint.pt", "live.json", "../splatter/preview.mp4", "splat.ply"):
        assert outputs.file(running, name) is None
    assert [p.name for p in outputs.files(running)] == ["splat_rot.splat", "preview.mp4"]


def test_a_succeeded_job_keeps_a_copy_until_the_retention_ends(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    now = [1_000_000.0]
    outputs = JobOutputs(tmp_path / "tasks", tmp_path / "data", 24, clock=lambda: now[0])
    kept = outputs.keep("job-1", folder)
    assert kept == tmp_path / "data" / "outputs" / "job-1"
    assert sorted(p.name for p in kept.iterdir()) == ["preview.mp4", "splat_rot.splat"]
    os.utime(kept, (now[0], now[0]))
    finished = _record("succeeded", task_id="gone")
    assert outputs.file(finished, "preview.mp4") == kept / "preview.mp4"
    assert outputs.file(finished, "live.splat") is None  # the snapshot ends with the run
    now[0] += 23.9 * 3600
    assert outputs.prune() == [] and outputs.folder(finished) == kept
    now[0] += 0.2 * 3600
    assert outputs.folder(finished) is None
    assert outputs.prune() == [kept] and not kept.exists()


def test_retention_zero_keeps_nothing(tmp_path: Path) -> None:
    folder = _job_folder(tmp_path)
    outputs = JobOutputs(tmp_path / "tasks", tmp_path / "data", 0)
    assert outputs.keep("job-1", folder) is None
    assert not (tmp_path / "data" / "outputs" / "job-1").exists()
