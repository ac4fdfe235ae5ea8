"""The push door over real loopback HTTP: intake, job inspection, cancel, auth, validation."""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from app import CAPABILITY
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import SUFFIX, domain_uploads, emulated_scene, push_envelope, stored
from tests.app.factories import make_settings
from tests.app.serving import progress_receiver, serve
from tests.support.waiting import alive, eventually

pytestmark = pytest.mark.anyio


async def test_a_pushed_job_is_accepted_run_and_reported(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "progress:5", "write-outputs")
    async with running_node(settings) as node:
        body = push_envelope(emulator, scene)
        response = await node.client.post(CAPABILITY, json=body)
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/jobs/{job['id']}"
        assert job["state"] in ("queued", "running") and job["source"] == "push"
        assert job["task_id"] == body["task"]["id"] and job["job_id"] == body["task"]["job_id"]
        done = await node.wait_state(job["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "succeeded", done["error"]
    assert [(a["name"], a["data_type"]) for a in done["artifacts"]] == [
        (f"refined_splat{SUFFIX}", "splat_data"),
        (f"refined_splat_preview_angle{SUFFIX}", "splat_preview_angle"),
        (f"refined_splat_preview_top{SUFFIX}", "splat_preview_top"),
        (f"refined_splat_preview_video{SUFFIX}", "splat_preview_video"),
    ]
    assert done["progress"]["progress"] == 100 and done["progress"]["status"] == "succeeded"
    assert done["events"][0]["event"]["message"] == "workspace prepared"
    assert [e["seq"] for e in done["events"]] == list(range(1, len(done["events"]) + 1))
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    # every domain request carried the envelope's token; the artifacts are on the server
    requests = emulator.state.request_log("domain")
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {body['access_token']}"}
    assert {r.status for r in requests} <= {200, 201}
    items = stored(emulator, scene.domain_id)
    assert items[(f"refined_splat{SUFFIX}", "splat_data")] == b"\x01" * 64
    assert items[(f"refined_splat_preview_video{SUFFIX}", "splat_preview_video")] == (
        b"mp4-video" * 16
    )
    artifact_ids = {a["id"] for a in done["artifacts"]}
    assert artifact_ids == {i.id for i in emulator.state.data_items(scene.domain_id)
                            if i.name.startswith("refined_splat")}  # fmt: skip


async def test_progress_url_receives_heartbeat_shaped_updates(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    receiver = progress_receiver(received)
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "progress:5", "write-outputs")
    async with serve(receiver) as receiver_url, running_node(settings) as node:
        body = {**push_envelope(emulator, scene), "progress_url": f"{receiver_url}/progress"}
        job = (await node.client.post(CAPABILITY, json=body)).json()
        await node.wait_state(job["id"], "succeeded")
        await eventually(lambda: bool(received) and received[-1]["progress"].get("progress") == 100)
    assert all(set(update) == {"progress", "events"} for update in received)
    pcts = [u["progress"].get("pct", u["progress"].get("progress")) for u in received]
    assert pcts == sorted(pcts)
    messages = [e["message"] for u in received for e in u["events"]]
    assert messages.count("workspace prepared") == 1  # acknowledged events are not resent
    assert "all outputs uploaded" in messages


async def test_delete_cancels_a_running_job_and_stops_its_pipeline(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    pidfile = tmp_path / "child.pid"
    settings = make_settings(tmp_path, f"pid:{pidfile}", "train-forever", cancel_grace_secs=3.0)
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await eventually(pidfile.exists)
        child = int(pidfile.read_text())
        response = await node.client.delete(f"/jobs/{job['id']}")
        assert response.status_code == 202
        done = await node.wait_state(job["id"], "cancelled", within_s=5.0)
        again = await node.client.delete(f"/jobs/{job['id']}")
    assert done["error"] == "task cancelled: python execution"
    assert done["progress"] == {"stage": "cancelled", "status": "cancelled"}
    assert not alive(child)
    assert again.status_code == 409 and again.json() == {
        "detail": f"job {job['id']} has already cancelled"
    }
    assert domain_uploads(emulator) == []


async def test_a_queued_job_is_cancelled_at_once(tmp_path: Path, emulator: EmulatorServer) -> None:
    scene = emulated_scene(emulator)
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "sleep:30")
    async with running_node(settings) as node:
        first = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        second = await node.push(push_envelope(emulator, scene))
        assert second["state"] == "queued"
        cancelled = (await node.client.delete(f"/jobs/{second['id']}")).json()
        assert cancelled["state"] == "cancelled"
        assert cancelled["error"] == "cancelled before it started"
        await node.client.delete(f"/jobs/{first['id']}")
        await node.wait_state(first["id"], "cancelled")


async def test_a_second_push_of_a_running_task_is_a_conflict(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "sleep:30")
    async with running_node(settings) as node:
        body = push_envelope(emulator, scene)
        first = (await node.client.post(CAPABILITY, json=body)).json()
        await eventually(started.exists)
        response = await node.client.post(CAPABILITY, json=body)
        await node.client.delete(f"/jobs/{first['id']}")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"task {body['task']['id']} is already running as job {first['id']}"
    )


async def test_a_failing_job_records_the_reference_reason(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    async with running_node(make_settings(tmp_path, "exit:1")) as node:
        job = await node.push(push_envelope(emulator, scene))
        done = await node.wait_state(job["id"], "failed")
    assert done["error"] == "runner failed: python job failed: status=Some(1)"
    assert done["progress"] == {"pct": 35, "stage": "python", "status": "failed"}


async def test_a_pipeline_killed_by_sigkill_fails_the_job_and_the_node_runs_the_next(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    pidfile = tmp_path / "child.pid"
    gate = tmp_path / "second-run"
    # The first run trains until killed; the second (gate file present) writes its outputs.
    settings = make_settings(tmp_path, f"pid:{pidfile}", f"wait-file:{gate}", "write-outputs")
    async with running_node(settings) as node:
        first = await node.push(push_envelope(emulator, scene))
        await eventually(pidfile.exists)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        failed = await node.wait_state(first["id"], "failed")
        assert (await node.client.get("/health")).status_code == 200
        gate.write_text("go")
        second = await node.push(push_envelope(emulator, scene))
        done = await node.wait_state(second["id"], "succeeded", "failed")
    assert failed["error"] == (
        "runner failed: python job failed: status=None "
        "(killed by SIGKILL; the process may have run out of memory)"
    )
    assert done["state"] == "succeeded"


async def test_listing_jobs_filters_by_state_and_counts(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    async with running_node(make_settings(tmp_path, "write-splat")) as node:
        ids = []
        for cids in ([scene.cid], []):
            job = await node.push(push_envelope(emulator, scene, cids))
            ids.append(job["id"])
            await node.wait_state(job["id"], "succeeded", "failed")
        everything = (await node.client.get("/jobs")).json()
        failed = (await node.client.get("/jobs", params={"state": "failed"})).json()
        paged = (await node.client.get("/jobs", params={"limit": 1, "offset": 1})).json()
        bad = await node.client.get("/jobs", params={"state": "paused"})
    assert [j["id"] for j in everything["data"]] == ids[::-1] and everything["count"] == 2
    assert "events" not in everything["data"][0]
    assert [j["id"] for j in failed["data"]] == [ids[1]] and failed["count"] == 1
    assert failed["data"][0]["error"] == (
        "runner failed: no input cid provided; cannot run splatter job"
    )
    assert [j["id"] for j in paged["data"]] == [ids[0]] and paged["count"] == 2
    assert bad.status_code == 422


async def test_unknown_jobs_are_404(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        get = await node.client.get("/jobs/nope")
        delete = await node.client.delete("/jobs/nope")
    assert (get.status_code, get.json()) == (404, {"detail": "job nope not found"})
    assert delete.status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": {"capability": "/reconstruction/local-refinement/v1"}},
         "unsupported capability '/reconstruction/local-refinement/v1'; this node serves "
         "/splatter/colmap/v1"),
        ({"cancel": True}, "the lease is cancelled (cancel: true); there is nothing to run"),
        ({"access_token": ""}, "String should have at least 1 character"),
        ({"domain_server_url": "ftp://x"}, "URL must start with http:// or https://"),
        ({"task": {"id": "not-a-uuid"}}, "Input should be a valid UUID"),
        ({"progress_url": "file:///etc/passwd"}, "URL must start with http:// or https://"),
    ],
)  # fmt: skip
async def test_unusable_envelopes_are_refused_with_422(
    tmp_path: Path, emulator: EmulatorServer, change: dict[str, Any], message: str
) -> None:
    body = push_envelope(emulator, emulated_scene(emulator))
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    async with running_node(make_settings(tmp_path)) as node:
        response = await node.client.post(CAPABILITY, json=body)
        listed = (await node.client.get("/jobs")).json()
    assert response.status_code == 422
    assert message in json.dumps(response.json())
    assert listed["count"] == 0


async def test_a_body_that_is_not_json_is_refused(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        response = await node.client.post(
            CAPABILITY, content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert "JSON decode error" in response.text


async def test_other_jobs_wait_for_the_slot_and_run_in_order(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "sleep:0.3", "write-splat")
    async with running_node(settings) as node:
        ids = [(await node.push(push_envelope(emulator, scene)))["id"] for _ in range(3)]
        jobs = [await node.wait_state(i, "succeeded") for i in ids]
    for before, after in itertools.pairwise(jobs):
        assert before["finished_at"] <= after["started_at"]


async def test_a_lone_surrogate_in_the_child_error_fails_the_job(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """An undecodable byte in the child's error (JSON ``"\\udcff"``) must not leave the job
    running: the reason is sent as UTF-8 with ``?`` in place of the surrogate."""
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "error:cannot read frame_\udcff.jpg")
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        done = await node.wait_state(job["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "failed"
    assert done["error"].startswith("runner failed: ")
    assert "\udcff" not in done["error"]
    done["error"].encode("utf-8")  # strict: the stored reason is valid UTF-8
