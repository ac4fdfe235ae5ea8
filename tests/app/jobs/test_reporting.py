"""progress_url delivery: coalesced, events resent until acknowledged, failures harmless."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from app.jobs.reporting import ProgressForwarder

pytestmark = pytest.mark.anyio


async def test_events_are_resent_until_a_2xx_acknowledges_them() -> None:
    bodies: list[dict[str, object]] = []
    answers: Iterator[Exception | int] = iter([httpx.ConnectError("refused"), 500, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        bodies.append(json.loads(request.content))
        return httpx.Response(answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        forwarder = ProgressForwarder(http, "http://127.0.0.1:1/progress")
        forwarder.log_event({"message": "a"})
        forwarder.set_progress({"pct": 5})
        await forwarder.deliver_once()  # connect error: kept
        await forwarder.deliver_once()  # 500: kept
        forwarder.log_event({"message": "b"})
        await forwarder.deliver_once()  # 200: both acknowledged
        forwarder.set_progress({"pct": 20})
        await forwarder.close()  # final flush
    assert bodies[0] == {"progress": {"pct": 5}, "events": [{"message": "a"}]}
    assert bodies[1]["events"] == [{"message": "a"}, {"message": "b"}]
    assert bodies[2] == {"progress": {"pct": 20}, "events": []}


async def test_a_forwarder_with_nothing_new_sends_nothing_on_close() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        forwarder = ProgressForwarder(http, "http://127.0.0.1:1/progress")
        forwarder.start()
        await forwarder.close()
    assert calls == []


async def test_an_update_whose_post_the_close_cut_off_is_sent_again() -> None:
    bodies: list[dict[str, object]] = []
    first_arrived, never = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if not first_arrived.is_set():
            first_arrived.set()
            await never.wait()  # the receiver is slow: close() cancels this POST
        bodies.append(json.loads(request.content))
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        forwarder = ProgressForwarder(http, "http://127.0.0.1:1/progress")
        forwarder.start()
        forwarder.set_progress({"status": "interrupted"})
        forwarder.log_event({"message": "interrupted: node shutting down"})
        await asyncio.wait_for(first_arrived.wait(), 5.0)
        await forwarder.close()  # nothing changed since: only the cut-off batch is owed
    assert bodies == [
        {
            "progress": {"status": "interrupted"},
            "events": [{"message": "interrupted: node shutting down"}],
        }
    ]


async def test_a_refused_last_update_gets_one_more_try_on_close() -> None:
    answers = iter([503, 200])
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(next(answers))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        forwarder = ProgressForwarder(http, "http://127.0.0.1:1/progress")
        forwarder.set_progress({"pct": 100, "status": "succeeded"})
        await forwarder.deliver_once()  # 503, and nothing changes after it
        await forwarder.close()
    assert bodies == [{"progress": {"pct": 100, "status": "succeeded"}, "events": []}] * 2
