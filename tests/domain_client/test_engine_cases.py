"""Protocol §4.3: the engine cycle (cases 3–5)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from domain_client import DdsAuth, DdsClient, RunnerError, TaskContext, TokenConfig, Wallet
from domain_client.timestamps import format_timestamp
from tests.domain_client.engine_helpers import body_of, engine_for, heartbeat_echo
from tests.domain_client.factories import (
    BASE,
    CAPABILITY,
    PRIVATE_KEY,
    fallback_404,
    lease_body,
    metadata_json,
    ts,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def happy_lease() -> dict[str, object]:
    return lease_body(token="t-A", lease_expires_at=format_timestamp(datetime.now(UTC)))


def rotating_heartbeat(lease: dict[str, object], token: str = "t-B"):  # type: ignore[no-untyped-def]
    task = lease["task"]
    assert isinstance(task, dict)

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "lease_expires_at": ts(30),
                "cancel": False,
                "task_id": task["id"],
                "job_id": task["job_id"],
                "attempts": 1,
                "max_attempts": 5,
                "deps_remaining": 0,
            },
        )

    return respond


async def upload_mock_output(ctx: TaskContext) -> None:
    await ctx.storage.put_bytes("out/mock-output.json", b'{"status":"ok"}')
    ctx.reporter.set_progress({"capability": ctx.task.capability})


async def test_case_03_happy_path_with_token_rotation(http: httpx.AsyncClient) -> None:
    lease = happy_lease()
    task, domain = lease["task"], lease["domain_id"]
    assert isinstance(task, dict)
    bearer = {"authorization": "Bearer node-abc"}
    with respx.mock(base_url=BASE) as mock:
        lease_route = mock.get("/tasks", headers=bearer).respond(200, json=lease)
        heartbeat = mock.post(f"/tasks/{task['id']}/heartbeat", headers=bearer).mock(
            side_effect=rotating_heartbeat(lease)
        )
        upload = mock.post(
            f"/api/v1/domains/{domain}/data", headers={"authorization": "Bearer t-B"}
        ).respond(200, json={"data": [metadata_json("artifact-id", "x", "json", 15)]})
        complete = mock.post(
            f"/tasks/{task['id']}/complete",
            headers={**bearer, "content-type": "application/json"},
        ).respond(200)
        fallback_404(mock)  # no info and no lookup mock: "no info", "no existing item"
        outcome = await engine_for(http, {CAPABILITY: upload_mock_output}).run_once()

    assert outcome == "completed"
    assert lease_route.call_count == 1 and heartbeat.call_count >= 1
    assert upload.call_count >= 1 and complete.call_count == 1
    sent = complete.calls.last.request.content
    for fragment in (
        b'"artifact-id"',
        f'"job_id":"{task["job_id"]}"'.encode(),
        f'"capability":"{CAPABILITY}"'.encode(),
    ):
        assert fragment in sent
    assert body_of(complete.calls.last.request)["meta"]["artifacts"] == [
        {
            "logical_path": "out/out/mock-output.json",
            "name": f"out_out_mock-output_json_{task['id']}",
            "data_type": "json",
            "id": "artifact-id",
        }
    ]
    progress = [body_of(call.request)["progress"] for call in heartbeat.calls]
    assert progress[0] == {} and {"capability": CAPABILITY} in progress


async def test_case_04_runner_error_is_reported_as_fail(http: httpx.AsyncClient) -> None:
    lease = happy_lease()
    task = lease["task"]
    assert isinstance(task, dict)

    async def boom(ctx: TaskContext) -> None:
        raise RunnerError("boom")

    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, json=lease)
        heartbeat = mock.post(f"/tasks/{task['id']}/heartbeat").respond(200, json={})
        fail = mock.post(f"/tasks/{task['id']}/fail").respond(200)
        outcome = await engine_for(http, {CAPABILITY: boom}).run_once()
    assert outcome == "failed"
    assert heartbeat.call_count >= 1 and fail.call_count == 1
    body = body_of(fail.calls.last.request)
    assert body["reason"] == "runner failed: boom"
    assert set(body["details"]) == {"job", "artifacts"} and body["details"]["artifacts"] == []


async def test_case_05_full_node_loop_with_siwe(http: httpx.AsyncClient) -> None:
    lease = lease_body(token="session-A")
    task, domain = lease["task"], lease["domain_id"]
    assert isinstance(task, dict)
    siwe = {"authorization": "Bearer siwe-access-token"}
    expires = format_timestamp(datetime.now(UTC) + timedelta(hours=1))
    auth = DdsAuth(DdsClient(http, BASE), Wallet.from_hex(PRIVATE_KEY), config=TokenConfig())
    stop = asyncio.Event()
    with respx.mock(base_url=BASE) as mock:
        nonce = mock.post("/internal/v1/auth/siwe/request").respond(
            200,
            json={
                "nonce": "n",
                "domain": "dds.example.com",
                "uri": "https://dds.example.com",
                "version": "1",
                "chainId": 8453,
                "issuedAt": "2026-01-01T00:00:00Z",
            },
        )
        verify = mock.post("/internal/v1/auth/siwe/verify").respond(
            200, json={"access_token": "siwe-access-token", "access_expires_at": expires}
        )
        lease_route = mock.get("/tasks", headers=siwe).mock(
            side_effect=lambda request: httpx.Response(
                200, json={**lease, "lease_expires_at": ts(60)}
            )
        )
        heartbeat = mock.post(f"/tasks/{task['id']}/heartbeat", headers=siwe).mock(
            side_effect=heartbeat_echo(lease, access_token="session-B")
        )
        upload = mock.post(
            f"/api/v1/domains/{domain}/data", headers={"authorization": "Bearer session-B"}
        ).respond(200, json={"data": [metadata_json("artifact-id", "x", "json", 15)]})
        complete = mock.post(f"/tasks/{task['id']}/complete", headers=siwe).respond(200)
        fallback_404(mock)
        engine = engine_for(
            http,
            {CAPABILITY: upload_mock_output},
            auth=auth,
            poll_backoff_ms_min=1000,
            poll_backoff_ms_max=1000,
        )
        loop = asyncio.create_task(engine.run_forever(stop))
        await eventually(lambda: upload.call_count >= 5)
        stop.set()
        await asyncio.wait_for(loop, 10)
        await auth.close()
    assert nonce.call_count >= 1 and verify.call_count >= 1
    assert lease_route.call_count >= 5 and heartbeat.call_count >= 1
    assert complete.call_count >= 1
    assert engine.outcomes["completed"] >= 4  # re-polled at once: no 1 s backoff in between
