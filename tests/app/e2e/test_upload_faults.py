"""Upload faults of the whole node (``python -m app`` + emulator + pipeline child, loopback).

One 502 on the chunked start of the splat and one 502 on its completion after the server had
stored it (the answer is lost): the node retries, finds the stored item by name instead of
re-sending, completes the task, and the domain holds exactly one splat. The emulator runs with
``unique_names=False``, so a duplicate would be stored and counted rather than refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.app.domains import SUFFIX
from tests.app.e2e.conftest import StartNode
from tests.app.e2e.harness import create_task, lease_environment, seed, wait_task
from tests.support.emulator import StartEmulator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SPLAT = f"refined_splat{SUFFIX}"
SPLAT_RECORD_BYTES = 32  # .splat: position, scale, colour, rotation of one Gaussian


async def test_a_lost_start_and_a_lost_completion_answer_still_store_one_splat(
    start_emulator: StartEmulator, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    emulator = start_emulator(unique_names=False)
    scene = await seed(emulator, synthetic_scene)
    for query, after in (("uploads", False), ("uploadId=", True)):
        # the first chunked start and completion after seeding are the splat's (§3.6 order)
        emulator.state.add_fault(
            "domain",
            502,
            method="POST",
            path_contains="/data/multipart",
            query_contains=query,
            after=after,
        )
    task_id = await create_task(emulator, scene)
    node = start_node(**lease_environment(emulator))
    task = await wait_task(emulator, task_id, node, within_s=180)
    node.stop()
    assert task.status == "completed", (task.fail_body, node.log_tail())
    assert emulator.state.faults.armed() == []  # both faults were met
    items = emulator.state.data_items(scene.domain_id)
    splats = [i for i in items if i.name == SPLAT]
    assert len(splats) == 1, splats
    (artifact,) = [a for a in task.complete_body["meta"]["artifacts"] if a["name"] == SPLAT]
    assert artifact["id"] == splats[0].id
    content = bytes(emulator.state.read_data(scene.domain_id, splats[0].id))
    assert content and len(content) % SPLAT_RECORD_BYTES == 0 and len(content) == splats[0].size
    completions = [
        r
        for r in emulator.state.requests.records("domain")
        if r.method == "POST" and "uploadId=" in r.query
    ]
    assert completions[0].status == 502  # the splat's: found by name afterwards, not re-sent
    assert [r.status for r in completions[1:]] == [200] * (len(completions) - 1)
    uploaded = [i for i in items if i.name.startswith("refined_splat")]
    assert len(completions) == len(uploaded)  # one completion per stored output
