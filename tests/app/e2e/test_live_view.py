"""The live view in real Chromium: a node process trains a real job (``python -m pipeline run``)
and the page follows its snapshots over Server-Sent Events until the final splat."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer
from tests.app.e2e.conftest import StartNode
from tests.app.e2e.harness import create_task, lease_environment, seed
from tests.support.browser import chromium_page

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.browser]


async def _running_job(client: httpx.AsyncClient, within_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        jobs = (await client.get("/jobs", params={"state": "running"})).json()["data"]
        if jobs:
            return dict(jobs[0])
        await asyncio.sleep(0.2)
    raise AssertionError("no job started")


async def test_the_page_shows_the_splat_growing_while_a_real_job_trains(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    scene = await seed(emulator, synthetic_scene)
    node = start_node(
        **lease_environment(emulator),
        SPLATTER_ITERATIONS="300",
        SPLATTER_SNAPSHOT_SECS="0.5",
        SPLATTER_PREVIEWS="false",
    )
    await create_task(emulator, scene)
    async with node.client() as client, chromium_page(640, 360) as page:
        job = await _running_job(client)
        await page.goto(f"{node.url}/jobs/{job['id']}/view")
        seen: list[tuple[str, int]] = []  # (live, splats) after each load
        loads = "0"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = await page.evaluate(
                "[document.body.dataset.loads || '0', document.body.dataset.live,"
                " Number(document.body.dataset.splats), document.getElementById('state')"
                ".textContent]"
            )
            if state[0] != loads:
                loads = state[0]
                seen.append((state[1], state[2]))
            if state[3] == "succeeded" and state[1] == "false":
                break
            await asyncio.sleep(0.1)
        curve_shown = await page.evaluate("!document.getElementById('curve').hidden")
        final = (await client.get(f"/jobs/{job['id']}/scene")).json()
    live_counts = [count for live, count in seen if live == "true"]
    assert len(live_counts) >= 2, (seen, node.log_tail())
    assert max(live_counts) > live_counts[0]  # densification: the scene fills in as it trains
    assert seen[-1] == ("false", final["splat"]["count"])  # then the final splat replaces it
    assert final["job"]["state"] == "succeeded"
    assert curve_shown  # the loss / Gaussian-count curve drew the training updates
