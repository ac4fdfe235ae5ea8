"""Start-up and shutdown: restart recovery, TASKS_ROOT cleanup, graceful stop of a running job."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from app.records import NewJob
from app.runner.retention import mark_running, read_marker
from app.services import start_services
from app.store import JobStore
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings
from tests.support.waiting import alive, eventually

pytestmark = pytest.mark.anyio

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"


async def test_a_restart_fails_the_lease_job_left_running_and_clears_old_folders_but_kept_ones(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    store = JobStore.open(settings.database_path)
    task_id = "5a1d0c8e-6f1e-4e59-9a51-3c2b1d7e8f90"  # job folders are named by task UUID
    # DMS hands a lease job's task out again; push jobs are queued again (test_push_restart)
    job = store.create(NewJob(source="lease", task_id=task_id, capability="/splatter/colmap/v1"))
    store.mark_running(job.id)
    store.close()
    stale = settings.tasks_root / task_id  # a leftover without a keep-marker
    (stale / "datasets").mkdir(parents=True)
    killed = settings.tasks_root / str(uuid.uuid4())  # a job running when the node died
    killed.mkdir()
    mark_running(killed, killed.name)
    async with running_node(settings) as node:
        record = await node.job(job.id)
        ready = await node.client.get("/ready")
    assert (record["state"], record["error"]) == ("failed", "node restarted")
    assert record["events"][-1]["event"] == {
        "level": "error", "stage": "runner", "message": "node restarted",
    }  # fmt: skip
    assert killed.is_dir() and not stale.exists()  # kept for a resume / removed
    marker = read_marker(killed)
    assert marker is not None and (marker.state, marker.reason) == (
        "interrupted", "node restarted",
    )  # fmt: skip
    assert ready.status_code == 200


async def test_old_job_folders_stay_when_cleanup_is_disabled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, disable_tasks_cleanup=True)
    (settings.tasks_root / "t-1").mkdir(parents=True)
    async with running_node(settings):
        pass
    assert (settings.tasks_root / "t-1").is_dir()


async def test_stopping_the_node_stops_the_running_job_and_records_it(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    pidfile = tmp_path / "child.pid"
    settings = make_settings(
        tmp_path, f"pid:{pidfile}", "ignore-sigterm", "train-forever", cancel_grace_secs=1.0
    )
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await eventually(pidfile.exists)
        begin = time.monotonic()
    stopped_in = time.monotonic() - begin
    record = JobStore.open(settings.database_path).get(job["id"])
    # #10: a push job stays queued for the next start (test_push_restart: it resumes there)
    assert (record.state, record.error) == ("queued", None)
    assert record.progress["interrupted_by"] == "node shutting down"
    assert not alive(int(pidfile.read_text()))
    assert stopped_in < 1.0 + 5.0  # grace period plus start-up slack, not the job's length
    # #10: a job stopped by the shutdown keeps its folder for a resume (it used to be removed).
    (kept,) = settings.tasks_root.iterdir()
    marker = read_marker(kept)
    assert marker is not None and (marker.state, marker.reason) == (
        "interrupted", "node shutting down",
    )  # fmt: skip


async def test_a_job_that_ends_within_the_drain_time_finishes_normally(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started = tmp_path / "started"
    settings = make_settings(
        tmp_path, f"touch:{started}", "sleep:0.5", "write-splat", shutdown_drain_secs=20.0
    )
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
    assert JobStore.open(settings.database_path).get(job["id"]).state == "succeeded"


async def test_lease_mode_without_a_lease_engine_refuses_to_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reg_secret="console-secret", secp256k1_privhex=KEY)
    with pytest.raises(RuntimeError, match="no lease engine wired in"):
        await start_services(settings)
