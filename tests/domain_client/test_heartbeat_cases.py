"""Protocol §4.4: heartbeats and session rules (cases 6–11), events and cadence details."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from domain_client import (
    DmsClient,
    DomainClient,
    HeartbeatDriver,
    Lease,
    LeaseSession,
    LeaseUpdate,
    StaticTokenSource,
    TaskCancelled,
)
from domain_client.heartbeat import heartbeat_delay_s
from tests.domain_client.engine_helpers import body_of, engine_for
from tests.domain_client.factories import BASE, CAPABILITY, lease_body, ts
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def session_for(lease_ttl_s: float = 60.0, **lease: Any) -> LeaseSession:
    return LeaseSession(Lease.model_validate(lease_body(lease_ttl_s=lease_ttl_s, **lease)))


def driver_for(http: httpx.AsyncClient, session: LeaseSession, **options: Any) -> HeartbeatDriver:
    dms = DmsClient(http, BASE, StaticTokenSource("node-abc"))
    return HeartbeatDriver(dms, session, **options)


async def test_case_06_heartbeat_response_rotates_the_storage_token(
    http: httpx.AsyncClient,
) -> None:
    session = session_for(token="t-old")
    domain = DomainClient(http, BASE, session.lease.domain_id or "", session.token, "c")
    session.on_server_url = lambda url: setattr(domain, "base_url", url)
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        route = mock.post(
            f"/tasks/{session.task_id}/heartbeat",
            headers={"authorization": "Bearer node-abc", "content-type": "application/json"},
            json={"progress": {"p": 1}, "events": []},
        ).respond(
            200,
            json={
                "access_token": "t-new",
                "access_token_expires_at": ts(60),
                "lease_expires_at": ts(60),
                "status": "running",
                "domain_server_url": "https://example.com",
                "task_id": session.task_id,
                "job_id": None,
                "attempts": 1,
            },
        )
        driver.set_progress({"p": 1})
        verdict = await driver.beat()
    assert verdict.kind == "running" and route.call_count == 1
    assert session.token.current() == "t-new"
    assert domain.base_url == "https://example.com"
    assert session.lease.task.attempts == 1 and session.lease.task.job_id is not None


async def test_case_07_ttl_driven_heartbeat(http: httpx.AsyncClient) -> None:
    # Deterministic part: with a 200 ms TTL the first heartbeat is due after 50–70 ms.
    start = datetime.now(UTC)
    delays = [
        heartbeat_delay_s(
            start,
            start + timedelta(milliseconds=200),
            None,
            min_ratio=0.25,
            max_ratio=0.35,
            max_interval_s=30,
            rng=random.Random(seed),
        )
        for seed in range(50)
    ]
    assert all(0.05 <= d <= 0.07 for d in delays)
    overdue = heartbeat_delay_s(
        start,
        start - timedelta(seconds=1),
        None,
        min_ratio=0.25,
        max_ratio=0.35,
        max_interval_s=30,
        rng=random.Random(0),
    )
    assert overdue == 0.1
    # Live part: no progress at all, the TTL alone drives a heartbeat long before the 30 s bound.
    session = LeaseSession(
        Lease.model_validate(
            lease_body(lease_expires_at=(start + timedelta(milliseconds=200)).isoformat())
        )
    )
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        route = mock.post(f"/tasks/{session.task_id}/heartbeat").respond(200, json={})
        began = time.monotonic()
        running = asyncio.create_task(driver.run())
        await eventually(lambda: route.call_count >= 1, within_s=5)
        first_after = time.monotonic() - began
        driver.stop()
        assert await running == "completed"
    assert first_after < 1.0, f"first TTL heartbeat after {first_after:.3f} s"
    assert body_of(route.calls[0].request) == {"progress": {}, "events": []}


async def test_case_08_progress_driven_heartbeat(http: httpx.AsyncClient) -> None:
    session = session_for(lease_ttl_s=5.0)
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        route = mock.post(f"/tasks/{session.task_id}/heartbeat").respond(200, json={})
        running = asyncio.create_task(driver.run())
        await asyncio.sleep(0.05)
        assert route.call_count == 0  # TTL-driven one is 1.25–1.75 s away
        began = time.monotonic()
        driver.set_progress({"pct": 10})
        await eventually(lambda: route.call_count >= 1, within_s=5)
        latency = time.monotonic() - began
        driver.stop()
        assert await running == "completed"
    assert body_of(route.calls[0].request)["progress"] == {"pct": 10}
    assert latency < 0.5, f"progress heartbeat after {latency:.3f} s"


async def test_case_09_cancellation(http: httpx.AsyncClient) -> None:
    session = session_for()
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        mock.post(f"/tasks/{session.task_id}/heartbeat").respond(200, json={"cancel": True})
        running = asyncio.create_task(driver.run())
        driver.set_progress({"pct": 1})
        assert await asyncio.wait_for(running, 5) == "cancelled"
    assert session.cancelled.is_set() and session.state == "cancelled"
    with pytest.raises(TaskCancelled, match="task cancelled: domain request"):
        session.token.current()


async def test_case_10_lost_lease_on_transport_error(http: httpx.AsyncClient) -> None:
    session = session_for()
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        mock.post(f"/tasks/{session.task_id}/heartbeat").mock(
            side_effect=httpx.ConnectError("connection refused")
        )
        running = asyncio.create_task(driver.run())
        driver.log_event({"level": "info", "message": "x"})
        assert await asyncio.wait_for(running, 5) == "lost"
    assert session.cancelled.is_set() and session.state == "lost"


async def test_case_11_session_rules(http: httpx.AsyncClient) -> None:
    # An unknown capability is refused at session start, before any heartbeat (§5 #10 form).
    lease = lease_body(capability="/unknown/v1")
    task_id = lease["task"]["id"]
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        heartbeat = mock.post(f"/tasks/{task_id}/heartbeat").respond(200, json={})
        fail = mock.post(f"/tasks/{task_id}/fail").respond(200)
        outcome = await engine_for(http, {CAPABILITY: _never_called}).run_once()
    assert outcome == "failed" and heartbeat.call_count == 0
    body = body_of(fail.calls.last.request)
    assert body["reason"] == "no runner registered for capability: /unknown/v1"
    assert body["details"]["job"]["capability"] == "/unknown/v1"
    assert body["details"]["artifacts"] == []
    # A started session has a next-heartbeat time.
    session = session_for()
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE, assert_all_called=False):
        running = asyncio.create_task(driver.run())
        await asyncio.sleep(0.02)
        assert driver.next_due is not None and driver.next_due > time.monotonic()
        driver.stop()
        await running
    # A heartbeat with a new token and cancel: true updates the token and cancels.
    verdict = session.apply(LeaseUpdate(access_token="t-new", cancel=True))
    assert verdict.kind == "cancelled" and session.cancelled.is_set()
    assert session.lease.access_token == "t-new"


async def _never_called(ctx: object) -> None:
    raise AssertionError("handler must not run")


async def test_events_are_resent_until_acknowledged(http: httpx.AsyncClient) -> None:
    session = session_for()
    driver = driver_for(http, session)
    with respx.mock(base_url=BASE) as mock:
        route = mock.post(f"/tasks/{session.task_id}/heartbeat").respond(200, json={})
        driver.log_event({"message": "one"})
        driver.log_event({"message": "two"})
        await driver.beat()
        driver.log_event({"message": "three"})
        await driver.beat()
        await driver.beat()
    sent = [body_of(call.request)["events"] for call in route.calls]
    assert sent == [[{"message": "one"}, {"message": "two"}], [{"message": "three"}], []]
    assert driver.pending_events == []


async def test_updates_during_a_heartbeat_are_coalesced_to_the_latest(
    http: httpx.AsyncClient,
) -> None:
    session = session_for()
    driver = driver_for(http, session)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return httpx.Response(200, json={})

    with respx.mock(base_url=BASE) as mock:
        route = mock.post(f"/tasks/{session.task_id}/heartbeat").mock(side_effect=slow)
        running = asyncio.create_task(driver.run())
        driver.set_progress({"pct": 1})
        await entered.wait()
        for pct in (2, 3, 4):
            driver.set_progress({"pct": pct})
        route.mock(side_effect=lambda request: httpx.Response(200, json={}))
        release.set()
        await eventually(lambda: route.call_count >= 2)
        await asyncio.sleep(0.05)
        driver.stop()
        await running
    progress = [body_of(call.request)["progress"] for call in route.calls]
    assert progress == [{"pct": 1}, {"pct": 4}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"task_id": "other"}, "task_id"),
        ({"domain_id": "other"}, "domain_id"),
        ({"task": {"id": "other", "capability": CAPABILITY}}, "task.id"),
    ],
)
def test_heartbeat_changing_task_or_domain_is_a_lost_lease(
    change: dict[str, Any], reason: str
) -> None:
    session = session_for()
    verdict = session.apply(LeaseUpdate.model_validate(change))
    assert verdict.kind == "lost" and reason in verdict.reason
    assert session.cancelled.is_set()


def test_heartbeat_with_past_lease_expiry_or_terminal_status() -> None:
    expired = session_for()
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert expired.apply(LeaseUpdate.model_validate({"lease_expires_at": past})).kind == "lost"
    for status in ("cancelled", "failed", "completed"):
        assert session_for().apply(LeaseUpdate(status=status)).kind == "cancelled"


def test_delay_is_bounded_by_sdk_interval_and_token_life() -> None:
    now = datetime.now(UTC)
    rng = random.Random(3)
    long_lease = heartbeat_delay_s(
        now,
        now + timedelta(hours=1),
        None,
        min_ratio=0.25,
        max_ratio=0.35,
        max_interval_s=30,
        rng=rng,
    )
    assert long_lease == 30
    short_token = heartbeat_delay_s(
        now,
        now + timedelta(hours=1),
        now + timedelta(seconds=20),
        min_ratio=0.25,
        max_ratio=0.35,
        max_interval_s=30,
        rng=rng,
    )
    assert short_token == pytest.approx(10, abs=0.01)
    no_expiry = heartbeat_delay_s(
        now, None, None, min_ratio=0.25, max_ratio=0.35, max_interval_s=30, rng=rng
    )
    assert no_expiry == 30
