"""The floor under download speed: the window arithmetic against a brute-force count, and real
downloads over loopback from a server that drips, stalls or streams at full speed."""

from __future__ import annotations

import asyncio
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
from domain_client.errors import DownloadTooSlowError
from domain_client.throughput import DownloadRateLimit, RateFloor, metered
from domain_client.tokens import DomainToken
from tests.app.serving import serve

pytestmark = pytest.mark.anyio

DOMAIN = "domain-1"


def brute_force_too_slow(
    arrivals: list[tuple[float, int]], now: float, limit: DownloadRateLimit
) -> bool:
    """Bytes that arrived in ``(now - window, now]``, summed one by one, against the floor."""
    if now < limit.window_s:  # the download started at 0
        return False
    in_window = sum(size for t, size in arrivals if t > now - limit.window_s)
    return in_window / limit.window_s < limit.min_bytes_per_s


@pytest.mark.parametrize("seed", range(20))
def test_the_window_rate_matches_a_brute_force_count_on_random_arrivals(seed: int) -> None:
    rng = random.Random(seed)
    limit = DownloadRateLimit(min_bytes_per_s=rng.uniform(100, 5000), window_s=rng.uniform(1, 10))
    floor = RateFloor(limit, "download x", started_s=0.0)
    arrivals: list[tuple[float, int]] = []
    now = 0.0
    for _ in range(400):
        now += rng.expovariate(rng.choice([0.5, 5.0, 50.0]))
        size = rng.randint(0, 20_000)
        arrivals.append((now, size))
        expected = brute_force_too_slow(arrivals, now, limit)
        try:
            floor.observe(size, now)
        except DownloadTooSlowError:
            assert expected, (seed, now)
            return
        assert not expected, (seed, now)


def test_the_first_window_is_granted_and_a_disabled_floor_never_fails() -> None:
    floor = RateFloor(DownloadRateLimit(1000.0, 10.0), "download x", started_s=0.0)
    floor.observe(1, 9.9)  # 1 byte in 9.9 s: not judged yet
    with pytest.raises(DownloadTooSlowError, match=r"download x: too slow, 0\.0 KiB/s"):
        floor.observe(1, 10.0)
    off = RateFloor(DownloadRateLimit(0.0, 1.0), "download y", started_s=0.0)
    off.observe(0, 1000.0)


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        DownloadRateLimit(1.0, 0.0)
    with pytest.raises(ValueError, match="min_bytes_per_s"):
        DownloadRateLimit(-1.0, 1.0)


async def test_metered_passes_every_chunk_through_unchanged() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(50):
            yield bytes([i]) * 100

    limit = DownloadRateLimit(1.0, 30.0)
    got = [chunk async for chunk in metered(chunks(), limit, "download z")]
    assert b"".join(got) == b"".join(bytes([i]) * 100 for i in range(50))


# --- real HTTP over loopback ---

BODY = bytes(range(256)) * 4096  # 1 MiB


async def _drip(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 64
            await asyncio.sleep(0.05)  # 1.3 KB/s, every read well inside any read timeout

    return StreamingResponse(body(), media_type="application/octet-stream")


async def _stall(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        await asyncio.sleep(30)
        yield b"x"

    return StreamingResponse(body(), media_type="application/octet-stream")


async def _fast(request: Request) -> Response:
    return Response(BODY, media_type="application/octet-stream")


def _domain_server() -> Starlette:
    base = f"/api/v1/domains/{DOMAIN}/data"
    return Starlette(
        routes=[
            Route(f"{base}/drip", _drip),
            Route(f"{base}/stall", _stall),
            Route(f"{base}/fast", _fast),
        ]
    )


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _client(http: httpx.AsyncClient, url: str) -> DomainClient:
    return DomainClient(
        http, url, DOMAIN, DomainToken("token"), "test-client",
        download_rate=DownloadRateLimit(min_bytes_per_s=64 * 1024, window_s=0.5),
    )  # fmt: skip


@pytest.mark.parametrize("item", ["drip", "stall"])
async def test_a_dripping_or_stalled_download_fails_within_about_a_window_and_leaves_nothing(
    http: httpx.AsyncClient, tmp_path: Path, item: str
) -> None:
    dest = tmp_path / "Frames.mp4"
    async with serve(_domain_server()) as url:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DownloadTooSlowError, match="too slow") as raised:
            await _client(http, url).download_raw(item, dest)
        elapsed = loop.time() - started
    assert f"download {item}" in str(raised.value)
    assert "MIN_DOWNLOAD_BYTES_PER_SEC" in str(raised.value)
    assert elapsed < 5.0  # one window (0.5 s), not retried, not the 60 s read timeout
    assert _names(tmp_path) == []


async def test_a_fast_download_is_untouched(http: httpx.AsyncClient, tmp_path: Path) -> None:
    dest = tmp_path / "Frames.mp4"
    async with serve(_domain_server()) as url:
        written = await _client(http, url).download_raw("fast", dest)
    assert written == len(BODY) and dest.read_bytes() == BODY
