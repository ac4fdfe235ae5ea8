"""Lease mode over loopback HTTP: the node registers with the emulated DDS, logs in, leases from
the emulated DMS, heartbeats, runs the stub pipeline and sends exactly the receipts of protocol
§1.9 (none after a cancel). The emulator rotates the domain token on every heartbeat (the old
one stays valid until it expires, as the real tokens do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import CAPABILITY
from app.settings import Settings
from app.store import JobStore
from emulator import EmulatorServer
from emulator.queue import TaskRecord
from tests.app.api.nodes import running_node
from tests.app.domains import (
    APP_TOKEN,
    NODE_KEY,
    REG_SECRET,
    SUFFIX,
    RefinedScene,
    emulated_scene,
    push_envelope,
)
from tests.app.factories import make_settings
from tests.support.waiting import alive, eventually

pytestmark = pytest.mark.anyio

NODE_ADDRESS = "0xfdbb6caf01414300c16ea14859fec7736d95355f"  # of NODE_KEY (§1.3)


def lease_settings(
    tmp_path: Path, emulator: EmulatorServer, *actions: str, **overrides: Any
) -> Settings:
    """A lease-mode node on the emulator: quick polling, progress heartbeats at most 5/s."""
    values: dict[str, Any] = {
        "reg_secret": REG_SECRET,
        "secp256k1_privhex": NODE_KEY,
        "dms_base_url": emulator.dms_base_url,
        "dds_base_url": emulator.dds_base_url,
        "poll_backoff_ms_min": 20,
        "poll_backoff_ms_max": 50,
        "progress_min_interval_secs": 0.2,
        "node_version": "v1.4.2",
        **overrides,
    }
    return make_settings(tmp_path, *actions, **values)


async def create_task(emulator: EmulatorServer, scene: RefinedScene) -> str:
    """``POST {DMS}/jobs`` with the app token (§1.12); returns the task id."""
    job = {
        "label": "splat",
        "domain_id": scene.domain_id,
        "priority": 0,
        "meta": {},
        "tasks": [
            {"label": "splat", "stage": "splatter", "capability": CAPABILITY,
             "capability_filters": {}, "priority": 0, "inputs_cids": [scene.cid],
             "mode": "public", "meta": {}, "max_attempts": 3}
        ],
        "edges": [],
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {APP_TOKEN}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.dms_base_url}/jobs", json=job, headers=headers)
    assert response.status_code == 201, response.text
    (task,) = response.json()["tasks"]
    task_id: str = task["id"]
    return task_id


async def task_reaches(
    emulator: EmulatorServer,
    task_id: str,
    condition: Callable[[TaskRecord], bool],
    within_s: float = 20.0,
) -> TaskRecord:
    await eventually(lambda: condition(emulator.state.task(task_id)), within_s=within_s)
    return emulator.state.task(task_id)


def ended(task: TaskRecord) -> bool:
    return task.status in ("completed", "failed", "cancelled")


def job_meta(emulator: EmulatorServer, task_id: str) -> dict[str, Any]:
    task = emulator.state.task(task_id)
    return {"task_id": task_id, "job_id": task.job_id, "domain_id": task.domain_id,
            "capability": CAPABILITY}  # fmt: skip


async def test_a_leased_task_runs_and_completes_with_the_exact_receipt(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    settings = lease_settings(tmp_path, emulator, "progress:8", "write-outputs")
    async with running_node(settings) as node:
        task = await task_reaches(emulator, task_id, ended)
        (job,) = await node.jobs()
        ready = (await node.client.get("/ready")).json()

    assert task.status == "completed", (task.fail_body, task.end_reason)
    items = {i.name: i for i in emulator.state.data_items(scene.domain_id)}
    names = sorted(
        f"{base}{SUFFIX}"
        for base in ("refined_splat", "refined_splat_preview_top",
                     "refined_splat_preview_angle", "refined_splat_preview_video")
    )  # fmt: skip
    artifacts = [
        {"logical_path": n, "name": n, "data_type": items[n].data_type, "id": items[n].id}
        for n in names
    ]
    assert task.complete_body == {
        "output_cids": [a["id"] for a in artifacts],
        "meta": {"job": job_meta(emulator, task_id), "artifacts": artifacts},
    }
    assert task.fail_body is None
    assert items[f"refined_splat{SUFFIX}"].data_type == "splat_data"

    history = task.progress_history
    assert history[0] == {}  # the initial heartbeat (§1.7)
    assert history[-1]["progress"] == 100 and history[-1]["status"] == "succeeded"
    pcts = [p.get("pct", p.get("progress")) for p in history if p]
    assert pcts == sorted(pcts) and pcts[0] == 5
    assert [e["message"] for e in task.events][:2] == ["workspace prepared", "inputs materialized"]
    assert {r.status for r in emulator.state.request_log("domain")} <= {200, 201}

    (registered,) = emulator.state.registry.nodes.values()
    assert (registered.wallet, registered.capabilities) == (NODE_ADDRESS, [CAPABILITY])
    assert registered.version == "1.4.2"
    assert (job["source"], job["state"], job["task_id"]) == ("lease", "succeeded", task_id)
    assert [a["id"] for a in job["artifacts"]] == [a["id"] for a in artifacts]
    assert ready["mode"] == {"lease": True, "push": True, "watch": False}
    assert ready["checks"]["lease"] == "ok"


async def test_a_failed_run_is_failed_with_the_exact_reason_and_details(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    async with running_node(lease_settings(tmp_path, emulator, "exit:1")) as node:
        task = await task_reaches(emulator, task_id, ended)
        (job,) = await node.jobs()
    assert task.status == "failed"
    assert task.fail_body == {
        "reason": "runner failed: python job failed: status=Some(1)",
        "details": {"job": job_meta(emulator, task_id), "artifacts": []},
    }
    assert task.progress_history[-1] == {"pct": 35, "stage": "python", "status": "failed"}
    assert (job["state"], job["error"]) == (
        "failed", "runner failed: python job failed: status=Some(1)",
    )  # fmt: skip


async def test_delete_of_a_lease_job_stops_the_child_and_sends_no_receipt(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    pidfile = tmp_path / "child.pid"
    settings = lease_settings(
        tmp_path, emulator, f"pid:{pidfile}", "train-forever", cancel_grace_secs=2.0
    )
    async with running_node(settings) as node:
        await eventually(pidfile.exists)
        (job,) = await node.jobs()
        response = await node.client.delete(f"/jobs/{job['id']}")
        done = await node.wait_state(job["id"], within_s=5.0)
        child_gone = not alive(int(pidfile.read_text()))
        await asyncio.sleep(0.3)  # a few poll cycles: the engine carries on
        ready = (await node.client.get("/ready")).json()
    task = emulator.state.task(task_id)
    assert response.status_code == 202 and child_gone
    assert (done["state"], done["error"]) == ("cancelled", "task cancelled: python execution")
    assert task.complete_body is None and task.fail_body is None
    assert task.status == "leased"  # nothing was reported: DMS re-offers it after the lease TTL
    assert ready["checks"]["lease"] == "ok"


async def test_a_dms_cancel_stops_the_child_and_sends_no_receipt(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    pidfile = tmp_path / "child.pid"
    settings = lease_settings(
        tmp_path, emulator, f"pid:{pidfile}", "train-forever", cancel_grace_secs=2.0
    )
    async with running_node(settings) as node:
        await eventually(pidfile.exists)
        emulator.state.cancel_task(task_id)  # delivered by the next heartbeat
        (job,) = await node.jobs()
        done = await node.wait_state(job["id"], within_s=10.0)
        child_gone = not alive(int(pidfile.read_text()))
    task = emulator.state.task(task_id)
    assert child_gone
    assert (done["state"], done["error"]) == ("cancelled", "task cancelled: python execution")
    assert task.status == "cancelled"
    assert task.complete_body is None and task.fail_body is None
    dms_paths = [r.path for r in emulator.state.request_log("dms")]
    assert not [p for p in dms_paths if p.endswith(("/complete", "/fail"))]


async def test_nothing_is_leased_while_a_push_job_holds_the_worker(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started, gate = tmp_path / "started", tmp_path / "gate"
    settings = lease_settings(
        tmp_path, emulator, f"touch:{started}", f"wait-file:{gate}", "write-splat"
    )
    async with running_node(settings) as node:
        pushed = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        task_id = await create_task(emulator, scene)
        await asyncio.sleep(0.5)  # ten poll intervals
        while_pushed = emulator.state.task(task_id).status
        gate.write_text("go")
        task = await task_reaches(emulator, task_id, ended)
        push_job = await node.job(pushed["id"])
    assert while_pushed == "pending"
    assert push_job["state"] == "succeeded" and task.status == "completed"


async def test_stopping_the_node_cancels_the_leased_task_without_a_receipt(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    pidfile = tmp_path / "child.pid"
    settings = lease_settings(
        tmp_path, emulator, f"pid:{pidfile}", "train-forever", cancel_grace_secs=1.0
    )
    async with running_node(settings) as node:
        await eventually(pidfile.exists)
        (job,) = await node.jobs()
    task = emulator.state.task(task_id)
    assert not alive(int(pidfile.read_text()))
    assert task.complete_body is None and task.fail_body is None
    record = JobStore.open(settings.database_path).get(job["id"])
    assert (record.state, record.error) == ("cancelled", "task cancelled: python execution")


async def test_a_leased_task_that_ends_within_the_drain_time_completes_with_its_receipt(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    task_id = await create_task(emulator, scene)
    started = tmp_path / "started"
    settings = lease_settings(
        tmp_path, emulator, f"touch:{started}", "sleep:0.5", "write-splat",
        shutdown_drain_secs=20.0,
    )  # fmt: skip
    async with running_node(settings):
        await eventually(started.exists)
        second = await create_task(emulator, emulated_scene(emulator))
    task = emulator.state.task(task_id)
    assert task.status == "completed" and task.complete_body is not None
    assert emulator.state.task(second).status == "pending"  # not leased while draining
