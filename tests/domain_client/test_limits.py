"""Size bounds on downloads: the running total against a brute-force sum, and real downloads over
loopback from a server that declares or streams more than allowed (a lazily generated 2 GB body:
the client stops reading within a few MiB and allocates nothing close to it)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from domain_client.domain import DomainClient
from domain_client.errors import DownloadTooLargeError
from domain_client.limits import DownloadBounds, bounded, refuse_declared
from domain_client.tokens import DomainToken
from tests.app.serving import serve

pytestmark = pytest.mark.anyio

DOMAIN = "domain-1"
MIB = 1024 * 1024
HUGE = 2 * 1024 * MIB


async def _chunks(sizes: list[int]) -> AsyncIterator[bytes]:
    for size in sizes:
        yield b"x" * size


@pytest.mark.parametrize("seed", range(20))
async def test_bounded_fails_exactly_when_the_running_total_passes_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.randint(0, 5000) for _ in range(rng.randint(1, 60))]
    limit = rng.randint(0, sum(sizes) + 5000)
    checks: list[int] = []
    bounds = DownloadBounds(limit, "LIMIT", on_progress=checks.append, progress_every=7000)
    expected_fail = any(sum(sizes[: i + 1]) > limit for i in range(len(sizes)))
    got = 0
    try:
        async for chunk in bounded(_chunks(sizes), bounds, "download x"):
            got += len(chunk)
    except DownloadTooLargeError as exc:
        assert expected_fail, (seed, limit)
        assert str(exc) == f"download x sent more than the {limit} bytes allowed (LIMIT)"
        assert got <= limit
    else:
        assert not expected_fail and got == sum(sizes)
    totals = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    accepted = [t for t in totals if t <= limit]  # totals only grow: a prefix
    assert checks == _expected_checks(accepted, 7000)


def _expected_checks(totals: list[int], every: int) -> list[int]:
    """Brute force: a check at the first total at or past each ``next`` mark."""
    checks, mark = [], every
    for total in totals:
        if total >= mark:
            checks.append(total)
            mark = total + every
    return checks


def test_a_declared_size_over_the_bound_is_refused_before_downloading() -> None:
    bounds = DownloadBounds(100, "SPLATTER_MAX_MANIFEST_BYTES")
    with pytest.raises(DownloadTooLargeError, match=r"^download m is 101 bytes, more than"):
        refuse_declared(101, bounds, "download m")
    refuse_declared(100, bounds, "download m")
    refuse_declared(None, bounds, "download m")
    refuse_declared(10**12, None, "download m")


# --- real HTTP over loopback ---


class _Huge:
    """Serves ``huge``: a 2 GB body generated lazily, counting what it handed to the server."""

    def __init__(self) -> None:
        self.sent = 0

    async def endpoint(self, request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            block = b"\0" * MIB
            while self.sent < HUGE:
                self.sent += len(block)
                yield block

        return StreamingResponse(body(), media_type="application/octet-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route(f"/api/v1/domains/{DOMAIN}/data/huge", self.endpoint)])


def _client(http: httpx.AsyncClient, url: str) -> DomainClient:
    return DomainClient(http, url, DOMAIN, DomainToken("token"), "test-client")


async def test_a_2_gb_body_stops_at_the_bound_and_leaves_no_file(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    server = _Huge()
    bounds = DownloadBounds(16 * MIB, "SPLATTER_MAX_MANIFEST_BYTES")
    async with serve(server.app()) as url:
        with pytest.raises(DownloadTooLargeError, match="sent more than the 16777216 bytes"):
            try:
                await _client(http, url).download_raw("huge", tmp_path / "m.json", bounds=bounds)
            finally:
                sent = server.sent  # (after the client hangs up, uvicorn drains the generator)
    assert sent < 64 * MIB  # read no further than the bound (plus socket buffers)
    assert not any(os.scandir(tmp_path))


async def test_a_declared_size_over_the_bound_sends_no_request(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    server = _Huge()
    async with serve(server.app()) as url:
        with pytest.raises(DownloadTooLargeError, match=f"is {HUGE} bytes"):
            await _client(http, url).download_raw(
                "huge", tmp_path / "m.json", expected_size=HUGE, bounds=DownloadBounds(MIB)
            )
    assert server.sent == 0


async def test_the_progress_check_can_stop_a_download(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    server = _Huge()

    def disk_full(received: int) -> None:
        raise OSError(f"disk full after {received} bytes")

    bounds = DownloadBounds(None, on_progress=disk_full, progress_every=8 * MIB)
    async with serve(server.app()) as url:
        with pytest.raises(OSError, match="disk full after"):
            try:
                await _client(http, url).download_raw("huge", tmp_path / "f.mp4", bounds=bounds)
            finally:
                sent = server.sent
    assert sent < 64 * MIB
    assert not any(os.scandir(tmp_path))
