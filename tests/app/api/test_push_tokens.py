"""A push job's domain token over real loopback HTTP: expiry mid-job, ``PUT /jobs/{id}/token``.

The emulated domain server checks every token's ``exp`` against its own clock; moving that
clock past the pushed token's lifetime makes the next request of the job answer 401, as a real
domain server does once a pushed token runs out during a long training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.services import Services
from emulator import EmulatorServer
from tests.app.api.nodes import Node, running_node
from tests.app.domains import SUFFIX, emulated_scene, push_envelope, stored
from tests.app.factories import make_settings
from tests.app.serving import progress_receiver, serve
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

LATER = "2030-01-01T00:00:00Z"


def services(node: Node) -> Services:
    found: Services = node.app.state.services
    return found


def progress_status(node: Node, job_id: str) -> object:
    return services(node).store.get(job_id).progress.get("status")


def expire_pushed_tokens(emulator: EmulatorServer) -> None:
    """Moves the domain server's clock past the lifetime of every token issued so far."""
    emulator.state.advance_clock(emulator.state.config.token_ttl + 60)


async def test_a_401_mid_job_waits_for_a_put_token_then_the_job_completes(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    receiver = progress_receiver(received)
    scene = emulated_scene(emulator)
    started, go = tmp_path / "started", tmp_path / "go"
    settings = make_settings(
        tmp_path, f"touch:{started}", f"wait-file:{go}", "write-outputs", token_wait_secs=60.0
    )
    async with serve(receiver) as receiver_url, running_node(settings) as node:
        body = {**push_envelope(emulator, scene), "progress_url": f"{receiver_url}/progress"}
        job = await node.push(body)
        await eventually(started.exists)
        expire_pushed_tokens(emulator)
        go.touch()  # the pipeline ends; the upload meets the expired token
        await eventually(lambda: progress_status(node, job["id"]) == "waiting_for_token")
        splat = settings.tasks_root / body["task"]["id"] / "refined" / "splatter"
        assert (splat / "splat_rot.splat").is_file()  # nothing is deleted while it waits
        await eventually(
            lambda: any(u["progress"].get("status") == "waiting_for_token" for u in received)
        )
        fresh = emulator.state.issue_domain_token(scene.domain_id)
        grant = {"access_token": fresh.token, "access_token_expires_at": LATER}
        put = await node.client.put(f"/jobs/{job['id']}/token", json=grant)
        assert put.status_code == 200, put.text
        done = await node.wait_state(job["id"])
        await eventually(lambda: received[-1]["progress"].get("progress") == 100)
    assert done["state"] == "succeeded", done["error"]
    messages = [e["event"]["message"] for e in done["events"]]
    waiting = (
        "the domain server refused the token (401); waiting up to 60 s for "
        f"PUT /jobs/{job['id']}/token"
    )
    assert messages.index(waiting) < messages.index("domain token replaced")
    assert messages.index("new domain token received") < messages.index("all outputs uploaded")
    assert 401 in {r.status for r in emulator.state.request_log("domain")}
    uploads = [r for r in emulator.state.request_log("domain") if r.method in ("POST", "PUT")]
    assert uploads[-1].headers["authorization"] == f"Bearer {fresh.token}"
    assert uploads[-1].status in (200, 201)
    assert stored(emulator, scene.domain_id)[(f"refined_splat{SUFFIX}", "splat_data")] == (
        b"\x01" * 64
    )
    assert fresh.token not in put.text  # never echoed


async def test_without_a_new_token_the_job_fails_with_a_clear_reason(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started, go = tmp_path / "started", tmp_path / "go"
    settings = make_settings(
        tmp_path, f"touch:{started}", f"wait-file:{go}", "write-outputs", token_wait_secs=0.3
    )
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        expire_pushed_tokens(emulator)
        go.touch()
        done = await node.wait_state(job["id"])
    assert done["state"] == "failed"
    assert done["error"] == (
        "runner failed: the domain server refused the job's token (401) and no new token "
        "arrived within 0.3 s (TOKEN_WAIT_SECS; hand one over with PUT /jobs/{id}/token)"
    )


async def test_a_job_waiting_for_a_token_can_be_cancelled(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started, go = tmp_path / "started", tmp_path / "go"
    settings = make_settings(
        tmp_path, f"touch:{started}", f"wait-file:{go}", "write-outputs", token_wait_secs=600.0
    )
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        expire_pushed_tokens(emulator)
        go.touch()
        await eventually(lambda: progress_status(node, job["id"]) == "waiting_for_token")
        await node.client.delete(f"/jobs/{job['id']}")
        done = await node.wait_state(job["id"], within_s=5.0)
    assert done["state"] == "cancelled"


async def test_a_queued_job_takes_the_new_token(tmp_path: Path, emulator: EmulatorServer) -> None:
    """The token handed to a job still waiting for the slot is the one its requests carry."""
    scene = emulated_scene(emulator)
    started, go = tmp_path / "started", tmp_path / "go"
    settings = make_settings(tmp_path, f"touch:{started}", f"wait-file:{go}", "write-splat")
    async with running_node(settings) as node:
        first = await node.push(push_envelope(emulator, scene))
        await eventually(started.exists)
        second = await node.push(push_envelope(emulator, scene))
        fresh = emulator.state.issue_domain_token(scene.domain_id)
        put = await node.client.put(
            f"/jobs/{second['id']}/token", json={"access_token": fresh.token}
        )
        go.touch()
        await node.wait_state(first["id"], "succeeded")
        done = await node.wait_state(second["id"])
    assert put.status_code == 200 and put.json()["state"] == "queued"
    assert done["state"] == "succeeded", done["error"]
    last = emulator.state.request_log("domain")[-1]
    assert last.headers["authorization"] == f"Bearer {fresh.token}"


@pytest.mark.parametrize(
    ("grant", "status", "detail"),
    [
        ({"access_token": ""}, 422, "String should have at least 1 character"),
        ({"access_token": "t", "access_token_expires_at": "2021-01-01T00:00:00Z"}, 422,
         "the domain token expired at 2021-01-01T00:00:00Z"),
    ],
)  # fmt: skip
async def test_an_unusable_token_is_refused(
    tmp_path: Path, emulator: EmulatorServer, grant: dict[str, Any], status: int, detail: str
) -> None:
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "sleep:30")
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, emulated_scene(emulator)))
        response = await node.client.put(f"/jobs/{job['id']}/token", json=grant)
        await node.client.delete(f"/jobs/{job['id']}")
    assert response.status_code == status
    assert detail in response.text


async def test_a_token_for_an_unknown_or_finished_job_is_refused(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = make_settings(tmp_path, "write-splat")
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, emulated_scene(emulator)))
        await node.wait_state(job["id"], "succeeded")
        finished = await node.client.put(f"/jobs/{job['id']}/token", json={"access_token": "t"})
        unknown = await node.client.put("/jobs/nope/token", json={"access_token": "t"})
    assert (finished.status_code, finished.json()) == (
        409, {"detail": f"job {job['id']} has already succeeded"},
    )  # fmt: skip
    assert unknown.status_code == 404
