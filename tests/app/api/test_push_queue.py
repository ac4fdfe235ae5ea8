"""The push queue over real loopback HTTP: cancel racing the slot, the queue cap, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app import CAPABILITY
from app.services import Services
from emulator import EmulatorServer
from tests.app.api.nodes import Node, running_node
from tests.app.domains import domain_uploads, emulated_scene, push_envelope
from tests.app.factories import make_settings
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def services(node: Node) -> Services:
    found: Services = node.app.state.services
    return found


async def test_delete_wins_over_a_queued_job_that_is_waiting_for_the_slot(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """The worker has taken the job off its queue and waits for the slot (held here as a
    leased task would hold it). A DELETE in that window must cancel it for good."""
    ran = tmp_path / "ran"
    settings = make_settings(tmp_path, f"touch:{ran}", "write-splat")
    async with running_node(settings) as node:
        slot = services(node).supervisor.slot
        async with slot:
            job = await node.push(push_envelope(emulator, emulated_scene(emulator)))
            jobs = services(node).jobs
            await eventually(jobs._queue.empty)  # the worker holds it and waits for the slot
            await asyncio.sleep(0.05)
            response = await node.client.delete(f"/jobs/{job['id']}")
            assert response.status_code == 202
            assert response.json()["state"] == "cancelled"
        # the slot is free again: the worker wakes up with the job it took before the DELETE
        await eventually(lambda: not slot.locked())
        await asyncio.sleep(0.3)
        done = await node.job(job["id"])
    assert (done["state"], done["error"]) == ("cancelled", "cancelled before it started")
    assert done["started_at"] is None
    assert not ran.exists()
    assert domain_uploads(emulator) == []


async def test_past_the_queue_cap_a_push_is_told_to_retry_later(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "sleep:30", splatter_max_queued=2)
    scene = emulated_scene(emulator)
    async with running_node(settings) as node:
        running = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        queued = [await node.push(push_envelope(emulator, scene)) for _ in range(2)]
        refused = await node.client.post(CAPABILITY, json=push_envelope(emulator, scene))
        await node.client.delete(f"/jobs/{queued[0]['id']}")
        accepted_again = await node.client.post(CAPABILITY, json=push_envelope(emulator, scene))
        listed = await node.jobs()
        for job in [running, queued[1], accepted_again.json()]:
            await node.client.delete(f"/jobs/{job['id']}")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.json() == {
        "detail": "2 push jobs are already queued (SPLATTER_MAX_QUEUED); retry in 60 s"
    }
    assert accepted_again.status_code == 202
    assert len(listed) == 4  # the refused push left no record


async def test_finished_jobs_are_deleted_after_the_retention_period(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "sleep:30", job_retention_days=30)
    scene = emulated_scene(emulator)
    async with running_node(settings) as node:
        jobs = services(node).jobs
        failed = await node.push(push_envelope(emulator, scene, cids=[]))
        await node.wait_state(failed["id"], "failed")
        running = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        now = datetime.now(UTC)
        kept_early = jobs.sweep_finished(now + timedelta(days=29))
        deleted = jobs.sweep_finished(now + timedelta(days=31))
        remaining = [j["id"] for j in await node.jobs()]
        gone = await node.client.get(f"/jobs/{failed['id']}")
        await node.client.delete(f"/jobs/{running['id']}")
    assert (kept_early, deleted) == (0, 1)
    assert remaining == [running["id"]]  # an active job is never deleted
    assert gone.status_code == 404


async def test_retention_zero_keeps_every_job(tmp_path: Path, emulator: EmulatorServer) -> None:
    settings = make_settings(tmp_path, job_retention_days=0)
    async with running_node(settings) as node:
        failed = await node.push(push_envelope(emulator, emulated_scene(emulator), cids=[]))
        await node.wait_state(failed["id"], "failed")
        deleted = services(node).jobs.sweep_finished(datetime.now(UTC) + timedelta(days=3650))
        listed = await node.jobs()
    assert deleted == 0 and [j["id"] for j in listed] == [failed["id"]]
