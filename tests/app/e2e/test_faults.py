"""Fault tests of the whole node (``python -m app`` + emulator + pipeline child, loopback).

- the pipeline child killed with SIGKILL mid-training: the task fails with the signal named,
  the service stays healthy, the next task runs;
- cancel by DMS (heartbeat ``cancel: true``) and by ``DELETE /jobs/{id}``: the child is gone
  within the grace period, and no receipt follows a DMS cancel;
- the domain server down during the uploads: the receipt lists exactly what was uploaded.

The node killed or stopped and restarted (resume) is in ``test_resume.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from emulator import EmulatorServer
from tests.app.domains import EMULATOR_CONFIG
from tests.app.e2e.conftest import StartNode
from tests.app.e2e.harness import (
    NodeProcess,
    create_task,
    lease_environment,
    seed,
    wait_task,
)
from tests.app.e2e.proxy import DomainOutageProxy
from tests.app.serving import ThreadedServer
from tests.support.waiting import alive

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SUFFIX = "_2025-01-02_03-04-05"
KILLED = (
    "runner failed: python job failed: status=None "
    "(killed by SIGKILL; the process may have run out of memory)"
)


def pipeline_children(node: NodeProcess) -> list[int]:
    """Pids of the node's child processes (the pipeline runs in its own session)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == node.pid and fields[0] != "Z":
            children.append(int(entry.name))
    return children


async def until(condition: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {within_s} s")


def training(emulator: EmulatorServer, task_id: str) -> bool:
    progress = emulator.state.task(task_id).progress_history
    return bool(progress) and progress[-1].get("pipeline_stage") == "train"


async def health_ms(node: NodeProcess) -> float:
    async with node.client() as client:
        started = time.perf_counter()
        response = await client.get("/health")
        assert response.status_code == 200
        return (time.perf_counter() - started) * 1000


async def test_a_pipeline_killed_mid_training_fails_the_task_and_the_next_one_runs(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    scene = await seed(emulator, synthetic_scene)
    first = await create_task(emulator, scene)
    node = start_node(**lease_environment(emulator))
    await until(lambda: training(emulator, first), 120, "training")
    (child,) = pipeline_children(node)
    os.kill(child, signal.SIGKILL)
    failed = await wait_task(emulator, first, node, within_s=30)
    assert failed.status == "failed"
    assert failed.fail_body["reason"] == KILLED
    assert failed.fail_body["details"]["artifacts"] == []
    assert await health_ms(node) < 1000

    second = await create_task(emulator, scene)
    done = await wait_task(emulator, second, node, within_s=180)
    assert done.status == "completed", (done.fail_body, node.log_tail())


async def test_a_dms_cancel_stops_the_child_within_the_grace_period_and_sends_nothing(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    node = start_node(CANCEL_GRACE_SECS="3", **lease_environment(emulator))
    await until(lambda: training(emulator, task_id), 120, "training")
    (child,) = pipeline_children(node)
    emulator.state.cancel_task(task_id)  # delivered by the next heartbeat
    cancelled_at = time.monotonic()
    await until(lambda: not alive(child), 3 + 10, "the child's exit")
    assert time.monotonic() - cancelled_at < 3 + 5  # grace period + one heartbeat interval
    await asyncio.sleep(1.0)  # time for a receipt that must not come
    task = emulator.state.task(task_id)
    assert (task.status, task.complete_body, task.fail_body) == ("cancelled", None, None)
    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
    assert (job["state"], job["error"]) == ("cancelled", "task cancelled: python execution")
    assert await health_ms(node) < 1000


async def test_delete_stops_a_training_job_within_the_grace_period(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    node = start_node(CANCEL_GRACE_SECS="3", **lease_environment(emulator))
    await until(lambda: training(emulator, task_id), 120, "training")
    (child,) = pipeline_children(node)
    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
        deleted_at = time.monotonic()
        assert (await client.delete(f"/jobs/{job['id']}")).status_code == 202
        ended = await node.wait_job(client, job["id"], within_s=10)
    assert not alive(child) and time.monotonic() - deleted_at < 3 + 2
    assert (ended["state"], ended["error"]) == ("cancelled", "task cancelled: python execution")
    task = emulator.state.task(task_id)
    assert task.complete_body is None and task.fail_body is None


@contextmanager
def emulator_behind(proxy: DomainOutageProxy) -> Iterator[EmulatorServer]:
    """An emulator whose public URL (leases, tokens, CIDs) is ``proxy``, in front of it."""
    with ThreadedServer(proxy.app) as proxy_server:
        config = replace(EMULATOR_CONFIG, public_url=proxy_server.url)
        with EmulatorServer(config) as emulator:
            proxy.target = emulator.listen_url
            yield emulator


def upload_lookup(name_prefix: str) -> Callable[[Request], bool]:
    """Matches the upsert lookup of an output (``GET …/data?name=<prefix>…``)."""
    return lambda request: f"name={name_prefix}" in request.url.query


@pytest.mark.parametrize(
    ("down_from", "expected_status", "expected_artifacts"),
    [
        ("refined_splat_preview", "completed", [f"refined_splat{SUFFIX}"]),
        ("refined_splat", "failed", []),
    ],
    ids=["after-the-splat", "before-the-splat"],
)
async def test_the_domain_server_down_during_uploads_leaves_a_receipt_of_what_was_uploaded(
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    down_from: str,
    expected_status: str,
    expected_artifacts: list[str],
) -> None:
    proxy = DomainOutageProxy(upload_lookup(down_from))
    with emulator_behind(proxy) as emulator:
        scene = await seed(emulator, synthetic_scene)
        task_id = await create_task(emulator, scene)
        node = start_node(**lease_environment(emulator))
        task = await wait_task(emulator, task_id, node, within_s=180)
        node.stop()
    assert proxy.down and proxy.refused, (task.status, task.fail_body, node.log_tail())
    assert task.status == expected_status, (task.fail_body, node.log_tail())
    receipt = task.complete_body or task.fail_body
    listed = (receipt.get("meta") or receipt.get("details"))["artifacts"]
    assert [a["name"] for a in listed] == expected_artifacts
    stored = {i.name for i in emulator.state.data_items(scene.domain_id)}
    assert set(expected_artifacts) <= stored
    if expected_status == "failed":
        splat_path = f"{node.work}/tasks/{task_id}/refined/splatter/splat_rot.splat"
        assert receipt["reason"] == f"runner failed: upload {splat_path} as refined_splat{SUFFIX}"
    else:
        warnings = [e for e in task.events if e["message"].startswith("preview upload failed")]
        assert len(warnings) == 3  # top, angle and video, each logged and skipped
