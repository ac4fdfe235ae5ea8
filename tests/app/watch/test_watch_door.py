"""The watch door inside a node of this process (real HTTP, real temp folder, stub pipeline):
the shared slot, DELETE, and the free-disk pause."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.runner.retention import read_marker
from app.services import Services
from tests.app.api.nodes import Node, running_node
from tests.app.factories import make_settings
from tests.app.watch.captures import drop
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def services(node: Node) -> Services:
    found: Services = node.app.state.services
    return found


async def test_a_watch_job_waits_while_a_leased_task_holds_the_slot(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    settings = make_settings(tmp_path, "write-outputs", watch_dir=watch, watch_stable_secs=0.1)
    async with running_node(settings) as node:
        slot = services(node).supervisor.slot
        async with slot:  # as a leased task holds it
            await eventually(lambda: (watch / "inbox").is_dir())
            drop(watch / "inbox", "room")
            await eventually(lambda: len(services(node).store.list_jobs()) == 1)
            await asyncio.sleep(0.5)
            (waiting,) = await node.jobs()
        done = await node.wait_state(waiting["id"])
    assert (waiting["source"], waiting["state"]) == ("watch", "queued")
    assert done["state"] == "succeeded"


async def test_delete_cancels_a_watch_job_and_its_input_goes_to_error(tmp_path: Path) -> None:
    watch, started = tmp_path / "watch", tmp_path / "started"
    settings = make_settings(
        tmp_path, f"touch:{started}", "train-forever", watch_dir=watch, watch_stable_secs=0.1
    )
    async with running_node(settings) as node:
        await eventually(lambda: (watch / "inbox").is_dir())
        drop(watch / "inbox", "room")
        await eventually(started.exists)
        (job,) = await node.jobs()
        response = await node.client.delete(f"/jobs/{job['id']}")
        done = await node.wait_state(job["id"])
        await eventually(lambda: any((watch / "error").iterdir()))
    assert response.status_code == 202
    assert (done["state"], done["error"]) == ("cancelled", "task cancelled: python execution")
    (folder,) = (watch / "error").iterdir()
    report = (folder / "error.txt").read_text()
    assert "reason: task cancelled: python execution" in report and "attempts: 1" in report
    assert not any((watch / "inbox").iterdir())
    assert not any((tmp_path / "tasks").iterdir())  # a DELETE keeps nothing for a resume


async def test_low_free_disk_pauses_intake_and_shows_in_ready(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    settings = make_settings(
        tmp_path, "write-outputs", watch_dir=watch, watch_stable_secs=0.1,
        min_free_disk_mb=10**9,  # more than any disk has
    )  # fmt: skip
    async with running_node(settings) as node:
        await eventually(lambda: (watch / "inbox").is_dir())
        drop(watch / "inbox", "room")
        door = services(node).watch
        assert door is not None
        await eventually(lambda: door.paused is not None)
        await asyncio.sleep(0.5)
        ready = await node.client.get("/ready")
        jobs = await node.jobs()
    assert ready.status_code == 503
    assert ready.json()["checks"]["watch"].startswith("intake paused: insufficient disk space: ")
    assert "MIN_FREE_DISK_MB" in ready.json()["checks"]["watch"]
    assert jobs == [] and [p.name for p in (watch / "inbox").iterdir()] == ["room"]


async def test_a_child_stopped_by_a_foreign_sigterm_is_queued_again_and_resumes(
    tmp_path: Path,
) -> None:
    watch, flags = tmp_path / "watch", tmp_path / "flags"
    flags.mkdir()
    settings = make_settings(
        tmp_path,
        f"once:{flags / 'checkpoint'}=write:checkpoints/step_000010.pt=kept",
        f"once:{flags / 'sigterm'}=kill-self:TERM",  # the first run only: not sent by the node
        "require-out:checkpoints/step_000010.pt",  # the second run finds the first one's folder
        "write-outputs",
        watch_dir=watch, watch_stable_secs=0.1,
    )  # fmt: skip
    async with running_node(settings) as node:
        await eventually(lambda: (watch / "inbox").is_dir())
        drop(watch / "inbox", "room")
        await eventually(lambda: len(services(node).store.list_jobs()) == 2, within_s=20.0)
        first, second = sorted(await node.jobs(), key=lambda job: job["created_at"])
        done = await node.wait_state(second["id"])
        interrupted = await node.job(first["id"])
        resumed = await node.job(second["id"])
        await eventually(lambda: any((watch / "processed").iterdir()))
    assert interrupted["state"] == "cancelled"
    assert interrupted["error"].startswith("task interrupted: pipeline ")
    assert done["state"] == "succeeded"
    logged = [entry["event"] for entry in resumed["events"]]
    messages = [event.get("message") for event in logged]
    assert "resuming in the job folder kept from an earlier run" in messages
    staged = next(event for event in logged if event.get("message") == "capture staged")
    assert staged["attempt"] == 2
    assert not any((watch / "error").iterdir()) and not any((watch / "inbox").iterdir())
    assert not any((tmp_path / "tasks").iterdir())  # a success removes the kept folder


async def test_an_interrupted_last_attempt_goes_to_error_and_keeps_its_folder(
    tmp_path: Path,
) -> None:
    watch = tmp_path / "watch"
    settings = make_settings(
        tmp_path, "write:checkpoints/step_000010.pt=kept", "kill-self:TERM",
        watch_dir=watch, watch_stable_secs=0.1, watch_max_attempts=1,
    )  # fmt: skip
    async with running_node(settings) as node:
        await eventually(lambda: (watch / "inbox").is_dir())
        drop(watch / "inbox", "room")
        await eventually(lambda: (watch / "error").is_dir() and any((watch / "error").iterdir()))
        (job,) = await node.jobs()
    (folder,) = (watch / "error").iterdir()
    report = (folder / "error.txt").read_text()
    assert "reason: task interrupted: pipeline " in report and "attempts: 1" in report
    (kept,) = (tmp_path / "tasks").iterdir()  # for RESUME_RETENTION_HOURS: dropping it resumes
    assert (kept / "out" / "checkpoints" / "step_000010.pt").read_text() == "kept"
    marker = read_marker(kept)
    assert marker is not None and marker.reason == "pipeline stopped by SIGTERM"
    assert job["state"] == "cancelled"
