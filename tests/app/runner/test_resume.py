"""Which stopped jobs keep their folder for a resume, and what the same task id, run again,
reuses. The runner on the real domain client against the emulator (loopback), the stub child."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runner import JobCancelledError, SplatterJobError, run_splatter_job
from app.runner.errors import PipelineInterruptedError
from app.runner.retention import MARKER, mark_interrupted, mark_running, read_marker
from app.settings import Settings
from app.worker.supervisor import WorkerSupervisor
from domain_client.delivery import ProgressReporter
from domain_client.models import Lease
from domain_client.storage import TaskStorage
from emulator import EmulatorServer
from tests.app.domains import RecordedContext, RefinedScene, emulated_scene, push_context
from tests.app.factories import make_settings
from tests.support.emulator import StartEmulator
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def recording_downloads(emulator: EmulatorServer, scene: RefinedScene) -> int:
    return sum(
        r.method == "GET" and scene.recording_by_id in r.path and "raw=true" in r.query
        for r in emulator.state.request_log("domain")
    )


async def stop_while_training(
    job: RecordedContext, settings: Settings, supervisor: WorkerSupervisor
) -> None:
    """Runs the job until its child trains, then cancels it; the cancel must end the run."""
    run = asyncio.create_task(run_splatter_job(job.context, settings, supervisor=supervisor))
    await eventually(lambda: "python pipeline starting" in job.reporter.messages())
    job.context.cancelled.set()
    with pytest.raises(JobCancelledError):
        await asyncio.wait_for(run, timeout=10)


def job_root(settings: Settings, job: RecordedContext) -> Path:
    return settings.tasks_root / job.task_id


async def test_a_job_stopped_by_shutdown_is_kept_and_the_same_task_resumes_without_downloads(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    first = push_context(emulator, http, scene)
    training = make_settings(tmp_path, "train-forever")
    supervisor = WorkerSupervisor(training)
    supervisor.begin_shutdown()
    await stop_while_training(first, training, supervisor)
    root = job_root(training, first)
    marker = read_marker(root)
    assert marker is not None and (marker.state, marker.reason) == (
        "interrupted", "node shutting down",
    )  # fmt: skip
    assert any(root.glob("datasets/*/Frames.mp4"))
    assert recording_downloads(emulator, scene) == 1

    again = push_context(emulator, http, scene, id=first.task_id)
    finishing = make_settings(tmp_path, "write-outputs")
    await run_splatter_job(again.context, finishing)
    resumed = next(e for e in again.reporter.events if e["message"].startswith("resuming"))
    assert resumed["interrupted_by"] == "node shutting down"
    assert recording_downloads(emulator, scene) == 1  # the kept recording was reused
    assert not root.exists()  # success: the folder goes


async def test_a_cancel_that_is_no_interruption_removes_the_folder(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    job = push_context(emulator, http, emulated_scene(emulator))
    settings = make_settings(tmp_path, "train-forever")
    await stop_while_training(job, settings, WorkerSupervisor(settings))
    assert not job_root(settings, job).exists()  # a DMS or user cancel: nothing to resume


@dataclass(frozen=True)
class LostLeaseContext:
    """A task context whose lease was lost (what ``domain_client``'s ``TaskContext`` says)."""

    inner: Any
    lease_lost: bool = True

    @property
    def lease(self) -> Lease:
        lease: Lease = self.inner.lease
        return lease

    @property
    def storage(self) -> TaskStorage:
        storage: TaskStorage = self.inner.storage
        return storage

    @property
    def reporter(self) -> ProgressReporter:
        reporter: ProgressReporter = self.inner.reporter
        return reporter

    @property
    def cancelled(self) -> asyncio.Event:
        cancelled: asyncio.Event = self.inner.cancelled
        return cancelled


async def test_a_lost_lease_keeps_the_folder(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    job = push_context(emulator, http, emulated_scene(emulator))
    lost = RecordedContext(LostLeaseContext(job.context), job.reporter)  # type: ignore[arg-type]
    settings = make_settings(tmp_path, "train-forever")
    await stop_while_training(lost, settings, WorkerSupervisor(settings))
    marker = read_marker(job_root(settings, job))
    assert marker is not None and marker.reason == "lease lost"


@pytest.mark.parametrize("actions", [("exit:143",), ("kill-self:TERM",)])
async def test_a_child_stopped_by_a_sigterm_the_node_did_not_send_keeps_the_folder(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient, actions: tuple[str, ...]
) -> None:
    job = push_context(emulator, http, emulated_scene(emulator))
    settings = make_settings(tmp_path, *actions)
    with pytest.raises(PipelineInterruptedError, match=r"^task interrupted: pipeline "):
        await run_splatter_job(job.context, settings)
    assert not job.context.cancelled.is_set()  # the node sent nothing
    marker = read_marker(job_root(settings, job))
    assert marker is not None and marker.reason == "pipeline stopped by SIGTERM"
    assert "python job failed" not in job.reporter.messages()


async def test_a_failed_required_upload_keeps_the_folder_with_its_outputs(
    tmp_path: Path, start_emulator: StartEmulator, http: httpx.AsyncClient
) -> None:
    emulator = start_emulator(domain_data_max_bytes=32)  # the splat has 64 bytes
    job = push_context(emulator, http, emulated_scene(emulator))
    settings = make_settings(tmp_path, "write-outputs")
    with pytest.raises(SplatterJobError, match=r"^upload "):
        await run_splatter_job(job.context, settings)
    root = job_root(settings, job)
    marker = read_marker(root)
    assert marker is not None and marker.reason == "required upload failed"
    assert (root / "refined/splatter/splat_rot.splat").is_file()


async def test_a_deterministic_failure_and_zero_retention_remove_the_folder(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    failing = push_context(emulator, http, scene)
    with pytest.raises(SplatterJobError, match="bad input"):
        await run_splatter_job(failing.context, make_settings(tmp_path, "error:bad input"))
    assert not (tmp_path / "tasks" / failing.task_id).exists()
    job = push_context(emulator, http, scene)
    settings = make_settings(tmp_path, "train-forever", resume_retention_hours=0)
    supervisor = WorkerSupervisor(settings)
    supervisor.begin_shutdown()
    await stop_while_training(job, settings, supervisor)
    assert not job_root(settings, job).exists()


async def test_under_disk_pressure_kept_folders_of_other_tasks_go_oldest_first(
    tmp_path: Path,
    emulator: EmulatorServer,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path, "write-outputs", min_free_disk_mb=1)
    older, newer = (settings.tasks_root / str(uuid.uuid4()) for _ in range(2))
    now = time.time()
    for stamp, folder in ((now - 200.0, older), (now - 100.0, newer)):
        folder.mkdir(parents=True)
        mark_running(folder, folder.name, now=stamp)
        mark_interrupted(folder, "lease lost", now=stamp)

    def free_bytes(tasks_root: Path) -> int:  # enough once the older folder is gone
        return 0 if older.exists() else 1 << 30

    monkeypatch.setattr("app.runner.job.free_disk_bytes", free_bytes)
    monkeypatch.setattr("app.runner.workspace.free_disk_bytes", free_bytes)
    job = push_context(emulator, http, emulated_scene(emulator))
    await run_splatter_job(job.context, settings)
    assert not older.exists() and (newer / MARKER).is_file()
