"""The node end to end, as operators run it: ``python -m app`` + the emulator + the real
``python -m pipeline run`` child on a tiny synthetic scene, all over loopback HTTP.

Lease mode: DDS registration and login, lease, heartbeats, the complete receipt. Push mode: the
envelope posted to the node, progress relayed to ``progress_url``. Both check the artifacts on
the domain server (exact names and data types), the receipt or job record, and every progress
value against the shapes of protocol §3.7.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest

from app import CAPABILITY
from demo import SeededScene
from emulator import EmulatorServer
from tests.app.e2e.conftest import StartNode
from tests.app.e2e.harness import create_task, lease_environment, seed, wait_task
from tests.app.e2e.shapes import check_v1_sequence
from tests.app.serving import ThreadedServer, progress_receiver
from tests.support.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SUFFIX = "_2025-01-02_03-04-05"  # the synthetic scene's refinement time
OUTPUTS = [
    (f"refined_splat{SUFFIX}", "splat_data"),
    (f"refined_splat_preview_angle{SUFFIX}", "splat_preview_angle"),
    (f"refined_splat_preview_top{SUFFIX}", "splat_preview_top"),
    (f"refined_splat_preview_video{SUFFIX}", "splat_preview_video"),
    (f"refined_splat_report{SUFFIX}", "splat_report_json"),
    (f"refined_splat_sog{SUFFIX}", "splat_data_sog"),
]  # sorted by logical path (= name: no outputs_prefix), the receipt's order
SEEDED = 7  # the recording, five COLMAP binaries and the manifest


def outputs_on_server(emulator: EmulatorServer, scene: SeededScene) -> list[dict[str, Any]]:
    """The receipt artifacts of what the node uploaded, read back from the domain server."""
    listed = emulator.state.data_items(scene.domain_id)
    assert len(listed) == SEEDED + len(OUTPUTS)  # nothing else was created
    items = {(i.name, i.data_type): i for i in listed}
    return [
        {
            "logical_path": name,
            "name": name,
            "data_type": data_type,
            "id": items[name, data_type].id,
        }
        for name, data_type in OUTPUTS
        if (name, data_type) in items
    ]


def check_output_files(emulator: EmulatorServer, scene: SeededScene) -> None:
    """The uploaded bytes are what their data types say: a ``.splat`` (32 bytes per Gaussian,
    finite positions), two JPEGs, an MP4, a SOG zip and the JSON quality report."""
    read = {
        i.data_type: emulator.state.read_data(scene.domain_id, i.id)
        for i in emulator.state.data_items(scene.domain_id)
    }
    splat = read["splat_data"]
    assert len(splat) >= 32 * 100 and len(splat) % 32 == 0
    assert all(math.isfinite(v) for v in struct.unpack_from("<3f", splat, 0))
    assert read["splat_preview_top"][:3] == read["splat_preview_angle"][:3] == b"\xff\xd8\xff"
    assert read["splat_preview_video"][4:8] == b"ftyp"
    assert read["splat_data_sog"][:4] == b"PK\x03\x04"
    assert "quality" in json.loads(read["splat_report_json"])


async def test_lease_mode_runs_a_task_to_the_exact_complete_receipt(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    node = start_node(**lease_environment(emulator))
    task = await wait_task(emulator, task_id, node, within_s=180)

    assert task.status == "completed", (task.fail_body, node.log_tail())
    artifacts = outputs_on_server(emulator, scene)
    assert [(a["name"], a["data_type"]) for a in artifacts] == OUTPUTS
    record = emulator.state.task(task_id)
    assert task.complete_body == {
        "output_cids": [a["id"] for a in artifacts],
        "meta": {
            "job": {"task_id": task_id, "job_id": record.job_id, "domain_id": scene.domain_id,
                    "capability": CAPABILITY},
            "artifacts": artifacts,
        },
    }  # fmt: skip
    assert task.fail_body is None
    check_output_files(emulator, scene)

    history = task.progress_history
    assert history[0] == {}  # the initial heartbeat (§1.7)
    kinds = check_v1_sequence([p for p in history if p])
    assert "training" in kinds
    final = history[-1]
    assert final["uploaded_splat"] == f"refined_splat{SUFFIX}"
    assert final["uploaded_previews"] == [
        f"refined_splat_preview_top{SUFFIX}", f"refined_splat_preview_angle{SUFFIX}",
    ]  # fmt: skip
    assert final["uploaded_preview_video"] == f"refined_splat_preview_video{SUFFIX}"
    assert final["uploaded_report"] == f"refined_splat_report{SUFFIX}"
    assert {"psnr", "ssim", "views"} <= set(final["metrics"])

    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
    assert (job["source"], job["state"], job["task_id"]) == ("lease", "succeeded", task_id)
    assert job["artifacts"] == artifacts


async def test_push_mode_runs_a_job_and_relays_its_progress(
    emulator: EmulatorServer, synthetic_scene: dict[str, Any], start_node: StartNode
) -> None:
    received: list[dict[str, Any]] = []
    receiver = progress_receiver(received)
    scene = await seed(emulator, synthetic_scene)
    node = start_node(SPLATTER_API_TOKEN="e2e-token")
    grant = emulator.state.issue_domain_token(scene.domain_id)
    with ThreadedServer(receiver) as receiver_server:
        async with node.client(Authorization="Bearer e2e-token") as client:
            envelope = {
                "access_token": grant.token,
                "domain_id": scene.domain_id,
                "domain_server_url": emulator.domain_server_url,
                "task": {"id": "0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11", "capability": CAPABILITY,
                         "inputs_cids": [scene.cid]},
                "progress_url": f"{receiver_server.url}/progress",
            }  # fmt: skip
            response = await client.post(CAPABILITY, json=envelope)
            assert response.status_code == 202, response.text
            job = await node.wait_job(client, response.json()["id"], within_s=180)
            # the relay sends its last update right after the job ended
            await eventually(lambda: bool(received) and "progress" in received[-1]["progress"])

    assert job["state"] == "succeeded", (job["error"], node.log_tail())
    artifacts = outputs_on_server(emulator, scene)
    assert [(a["name"], a["data_type"]) for a in artifacts] == OUTPUTS
    assert job["artifacts"] == artifacts
    check_output_files(emulator, scene)
    assert job["progress"] == received[-1]["progress"]
    kinds = check_v1_sequence([update["progress"] for update in received])
    assert "training" in kinds
    messages = [e["message"] for update in received for e in update["events"]]
    assert messages[0] == "workspace prepared" and "all outputs uploaded" in messages
    assert messages.count("workspace prepared") == 1  # acknowledged events are not resent
