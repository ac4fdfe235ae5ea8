"""Fault injection at the network edge: retries, timeouts mid-download, truncated bodies, token
rotation mid-upload, aborted uploads, and a lost lease that must send no receipt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

from domain_client import (
    DomainClient,
    DomainToken,
    ProtocolViolation,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TaskContext,
    TaskStorage,
)
from tests.domain_client.engine_helpers import engine_for, heartbeat_echo
from tests.domain_client.factories import (
    BASE,
    CAPABILITY,
    lease_body,
    metadata_json,
    multipart_body,
)

pytestmark = pytest.mark.anyio

DATA = "/api/v1/domains/dom1/data"
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


class StallingStream(httpx.AsyncByteStream):
    """Yields some bytes, then fails the read like a server that stopped sending."""

    def __init__(self, head: bytes) -> None:
        self._head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._head
        raise httpx.ReadTimeout("read timed out")


def domain_for(
    http: httpx.AsyncClient, token: DomainToken | None = None, retry: RetryPolicy = FAST_RETRY
) -> DomainClient:
    return DomainClient(http, BASE, "dom1", token or DomainToken("tkn"), "client-1", retry=retry)


async def test_503_then_200_is_retried(http: httpx.AsyncClient, tmp_path: Path) -> None:
    domain = domain_for(http)
    with respx.mock(base_url=BASE) as mock:
        listing = mock.get(DATA, params={"ids": "a"}).mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(200, json={"data": [metadata_json("a", "n", "t", 3, "dom1")]}),
            ]
        )
        raw = mock.get(f"{DATA}/a", params={"raw": "true"}).mock(
            side_effect=[httpx.Response(503), httpx.Response(200, content=b"abc")]
        )
        items = await domain.list_metadata(ids=["a"])
        written = await domain.download_raw("a", tmp_path / "a.bin", expected_size=3)
    assert [item.id for item in items] == ["a"] and listing.call_count == 2
    assert written == 3 and (tmp_path / "a.bin").read_bytes() == b"abc" and raw.call_count == 2


async def test_persistent_5xx_gives_up_after_the_policy(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get(DATA, params={"ids": "a"}).respond(503)
        with pytest.raises(ServerError, match=r"^server error \(503\)$"):
            await domain_for(http).list_metadata(ids=["a"])
    assert route.call_count == FAST_RETRY.attempts


async def test_timeout_mid_download_removes_the_partial_file(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    dest = tmp_path / "sub" / "big.bin"
    with respx.mock(base_url=BASE) as mock:
        route = mock.get(f"{DATA}/big", params={"raw": "true"}).mock(
            side_effect=lambda request: httpx.Response(200, stream=StallingStream(b"x" * 1000))
        )
        with pytest.raises(RequestTimeoutError, match=r"^network error: timed out: download big"):
            await domain_for(http).download_raw("big", dest)
    assert route.call_count == FAST_RETRY.attempts  # an idempotent GET is retried
    assert not dest.exists() and not dest.with_name("big.bin.part").exists()
    assert list(dest.parent.iterdir()) == []


async def test_truncated_multipart_body_is_a_clear_error(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = multipart_body(
        "B",
        [
            ({"id": "a", "name": "first", "data-type": "t"}, b"A" * 100),
            ({"id": "b", "name": "second", "data-type": "t"}, b"B" * 100),
        ],
    )
    with respx.mock(base_url=BASE) as mock:
        mock.get(DATA, params={"ids": "a,b"}).respond(
            200, content=body[:-60], headers={"content-type": "multipart/form-data; boundary=B"}
        )
        with pytest.raises(ProtocolViolation) as caught:
            await domain_for(http, retry=RetryPolicy(attempts=1)).download_multipart(
                ids=["a", "b"], dest_dir=tmp_path
            )
    assert str(caught.value) == (
        "incomplete multipart body: stream ended inside the content of part 2 (49 of 100 bytes)"
    )
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # noqa: ASYNC240


async def test_token_rotated_between_chunked_parts_is_used(http: httpx.AsyncClient) -> None:
    token = DomainToken("old")
    domain = domain_for(http, token)
    with respx.mock(base_url=BASE) as mock:
        mock.post(f"{DATA}/multipart", params={"uploads": ""}).respond(
            200, json={"upload_id": "u", "part_size": 4}
        )

        def first_part(request: httpx.Request) -> httpx.Response:
            token.set("new")  # a heartbeat rotated the token while part 1 was in flight
            return httpx.Response(200, json={"etag": "e1"})

        part1 = mock.put(
            f"{DATA}/multipart", params={"partNumber": "1"}, headers={"authorization": "Bearer old"}
        ).mock(side_effect=first_part)
        part2 = mock.put(
            f"{DATA}/multipart", params={"partNumber": "2"}, headers={"authorization": "Bearer new"}
        ).respond(200, json={"etag": "e2"})
        done = mock.post(
            f"{DATA}/multipart", params={"uploadId": "u"}, headers={"authorization": "Bearer new"}
        ).respond(200, json={"id": "d"})
        stored = await domain.upload_chunked("big", "binary", b"12345678")
    assert stored.id == "d" and (part1.call_count, part2.call_count, done.call_count) == (1, 1, 1)


async def test_failed_chunked_upload_is_aborted(http: httpx.AsyncClient, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"123456789")
    with respx.mock(base_url=BASE) as mock:
        mock.post(f"{DATA}/multipart", params={"uploads": ""}).respond(
            200, json={"upload_id": "u", "part_size": 4}
        )
        mock.put(f"{DATA}/multipart", params={"partNumber": "1"}).respond(200, json={"etag": "e1"})
        mock.put(f"{DATA}/multipart", params={"partNumber": "2"}).respond(400)
        abort = mock.delete(f"{DATA}/multipart", params={"uploadId": "u"}).respond(204)
        with pytest.raises(Exception, match=r"^bad request \(400\)$"):
            await domain_for(http).upload_chunked("f", "binary", source)
    assert abort.call_count == 1


async def test_abort_failure_does_not_hide_the_original_error(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(f"{DATA}/multipart", params={"uploads": ""}).respond(
            200, json={"upload_id": "u", "part_size": 0}
        )
        abort = mock.delete(f"{DATA}/multipart").respond(500)
        with pytest.raises(ProtocolViolation, match="invalid part_size 0"):
            await domain_for(http).upload_chunked("f", "binary", b"x")
    assert abort.call_count == 1


async def test_heartbeat_404_loses_the_lease_and_sends_no_receipt(
    http: httpx.AsyncClient,
) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    seen_cancel = asyncio.Event()

    async def long_job(ctx: TaskContext) -> None:
        ctx.reporter.set_progress({"pct": 1})  # triggers the heartbeat that answers 404
        await ctx.cancelled.wait()
        seen_cancel.set()
        ctx.raise_if_cancelled("python execution")

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        heartbeat = mock.post(f"{tasks}/heartbeat").mock(
            side_effect=[heartbeat_echo(lease)(), httpx.Response(404)]
        )
        complete = mock.post(f"{tasks}/complete").respond(200)
        fail = mock.post(f"{tasks}/fail").respond(200)
        outcome = await asyncio.wait_for(engine_for(http, {CAPABILITY: long_job}).run_once(), 10)
    assert outcome == "lost" and seen_cancel.is_set() and heartbeat.call_count == 2
    assert complete.call_count == fail.call_count == 0


async def test_handler_ignoring_cancellation_is_cancelled_after_grace(
    http: httpx.AsyncClient,
) -> None:
    lease = lease_body()
    tasks = f"/tasks/{lease['task']['id']}"
    cancelled_by_engine = asyncio.Event()

    async def stubborn(ctx: TaskContext) -> None:
        ctx.reporter.set_progress({"pct": 1})
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled_by_engine.set()
            raise

    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/tasks").respond(200, json=lease)
        mock.post(f"{tasks}/heartbeat").mock(
            side_effect=[heartbeat_echo(lease)(), heartbeat_echo(lease, cancel=True)()]
        )
        fail = mock.post(f"{tasks}/fail").respond(200)
        engine = engine_for(http, {CAPABILITY: stubborn}, cancel_grace_s=0.1)
        assert await asyncio.wait_for(engine.run_once(), 10) == "cancelled"
    assert cancelled_by_engine.is_set() and fail.call_count == 0


async def test_download_of_an_unreachable_server_is_a_network_error(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = TaskStorage(domain_for(http, retry=RetryPolicy(attempts=1)), "t", None)
    with respx.mock(base_url=BASE) as mock:
        mock.get(DATA).mock(side_effect=httpx.ConnectError("connection refused"))
        with pytest.raises(Exception, match=r"^network error: list domain data: ConnectError"):
            await storage.materialize("a", tmp_path)
