"""Engine rules beyond the upstream cases: lease validation, setup failures, receipts only for
live leases, 401 replay on receipts, and shutdown in the middle of a task."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from domain_client import LeaseLost, StaticTokenSource, TaskContext
from tests.domain_client.engine_helpers import body_of, engine_for, heartbeat_echo
from tests.domain_client.factories import BASE, CAPABILITY, lease_body

pytestmark = pytest.mark.anyio


async def _succeed(ctx: TaskContext) -> None:
    ctx.reporter.log_event({"level": "info", "message": "done"})


async def test_invalid_lease_is_dropped_without_any_dms_call(http: httpx.AsyncClient) -> None:
    lease = lease_body(access_token=None)
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        others = mock.route().respond(200)
        assert await engine_for(http, {CAPABILITY: _succeed}).run_once() == "rejected"
    assert others.call_count == 0


async def test_failed_initial_heartbeat_reports_nothing(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    ran = []

    async def handler(ctx: TaskContext) -> None:
        ran.append(True)

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").respond(503)
        receipts = mock.post(url__regex=r".*/(complete|fail)$").respond(200)
        assert await engine_for(http, {CAPABILITY: handler}).run_once() == "lost"
    assert ran == [] and receipts.call_count == 0


async def test_bad_domain_server_url_fails_setup_with_build_ports(
    http: httpx.AsyncClient,
) -> None:
    lease = lease_body(server_url="ftp://nowhere")
    tasks = f"/tasks/{lease['task']['id']}"
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").respond(200, json={})
        fail = mock.post(f"{tasks}/fail").respond(200)
        assert await engine_for(http, {CAPABILITY: _succeed}).run_once() == "failed"
    body = body_of(fail.calls.last.request)
    assert body["reason"] == "node_setup_failed" and body["details"]["stage"] == "build_ports"
    assert "not an http(s) URL" in body["details"]["error"]


async def test_final_heartbeat_cancel_suppresses_the_receipt(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        heartbeat = mock.post(f"{tasks}/heartbeat").mock(
            side_effect=[heartbeat_echo(lease)(), heartbeat_echo(lease, status="cancelled")()]
        )
        complete = mock.post(f"{tasks}/complete").respond(200)
        assert await engine_for(http, {CAPABILITY: _succeed}).run_once() == "cancelled"
    assert complete.call_count == 0
    assert body_of(heartbeat.calls.last.request)["events"] == [{"level": "info", "message": "done"}]


async def test_handler_raising_lease_lost_sends_no_receipt(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"

    async def expired(ctx: TaskContext) -> None:
        raise LeaseLost("lease lost: lease expired")

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(side_effect=heartbeat_echo(lease))
        receipts = mock.post(url__regex=r".*/(complete|fail)$").respond(200)
        assert await engine_for(http, {CAPABILITY: expired}).run_once() == "lost"
    assert receipts.call_count == 0


async def test_complete_401_refreshes_and_replays_once(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    auth = StaticTokenSource("old")
    rotate = auth.invalidate

    def invalidate(token: str) -> None:
        rotate(token)
        auth.set("new")

    auth.invalidate = invalidate  # type: ignore[method-assign]
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(side_effect=heartbeat_echo(lease))
        complete = mock.post(f"{tasks}/complete").mock(
            side_effect=lambda request: httpx.Response(
                401 if request.headers["authorization"] == "Bearer old" else 200
            )
        )
        engine = engine_for(http, {CAPABILITY: _succeed}, auth=auth)
        assert await engine.run_once() == "completed"
    assert complete.call_count == 2 and auth.invalidated == ["old"]


async def test_complete_error_ends_the_cycle_with_error(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(side_effect=heartbeat_echo(lease))
        complete = mock.post(f"{tasks}/complete").respond(500)
        assert await engine_for(http, {CAPABILITY: _succeed}).run_once() == "error"
    assert complete.call_count == 1  # receipts are not retried


async def test_stop_during_a_task_cancels_it_locally(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    started = asyncio.Event()

    async def slow(ctx: TaskContext) -> None:
        started.set()
        await ctx.cancelled.wait()
        ctx.raise_if_cancelled("python execution")

    stop = asyncio.Event()
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(side_effect=heartbeat_echo(lease))
        receipts = mock.post(url__regex=r".*/(complete|fail)$").respond(200)
        engine = engine_for(http, {CAPABILITY: slow})
        loop = asyncio.create_task(engine.run_forever(stop))
        await asyncio.wait_for(started.wait(), 5)
        assert engine.current_task_id == lease["task"]["id"]
        stop.set()
        await asyncio.wait_for(loop, 5)
    assert receipts.call_count == 0 and engine.outcomes["cancelled"] == 1
    assert engine.current_task_id is None


async def test_cancel_current_is_a_local_cancellation(http: httpx.AsyncClient) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    engine_box: list[object] = []

    async def cancel_myself(ctx: TaskContext) -> None:
        engine = engine_box[0]
        assert engine.cancel_current("operator asked")  # type: ignore[attr-defined]
        ctx.raise_if_cancelled("python execution")

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(side_effect=heartbeat_echo(lease))
        receipts = mock.post(url__regex=r".*/(complete|fail)$").respond(200)
        engine = engine_for(http, {CAPABILITY: cancel_myself})
        engine_box.append(engine)
        assert await engine.run_once() == "cancelled"
        assert not engine.cancel_current()
    assert receipts.call_count == 0


async def test_domain_401_asks_for_a_heartbeat_and_replays_with_the_new_token(
    http: httpx.AsyncClient,
) -> None:
    lease = lease_body(token="t-A")
    tasks, data = f"/tasks/{lease['task']['id']}", f"/api/v1/domains/{lease['domain_id']}/data"

    async def upload(ctx: TaskContext) -> None:
        await ctx.storage.put_domain_artifact("a.bin", "a", "binary", b"x")

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        heartbeat = mock.post(f"{tasks}/heartbeat").mock(
            side_effect=[
                heartbeat_echo(lease)(),
                heartbeat_echo(lease, access_token="t-B")(),
                heartbeat_echo(lease, access_token="t-B")(),
            ]
        )
        mock.get(data).respond(200, json={"data": []})
        stored = mock.post(data).mock(
            side_effect=lambda request: (
                httpx.Response(401)
                if request.headers["authorization"] == "Bearer t-A"
                else httpx.Response(200, json={"data": [{"id": "new"}]})
            )
        )
        mock.post(f"{tasks}/complete").respond(200)
        mock.route().respond(404)
        assert await engine_for(http, {CAPABILITY: upload}).run_once() == "completed"
    assert stored.call_count == 2 and heartbeat.call_count == 3
