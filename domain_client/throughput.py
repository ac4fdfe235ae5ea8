"""A floor under download speed, so that a server dripping bytes cannot hold a job forever.

A read timeout only catches a server that goes silent; one that sends a byte every few seconds
keeps every read alive. :func:`metered` wraps a body's chunks and fails the download with
:class:`~domain_client.errors.DownloadTooSlowError` once the bytes received over the last
``window_s`` seconds average less than ``min_bytes_per_s`` (the first window is granted in full
before any judgement), or once no chunk at all arrives for a whole window.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from domain_client.errors import DownloadTooSlowError

__all__ = ["DownloadRateLimit", "RateFloor", "metered"]

Clock = Callable[[], float]

_KIB = 1024.0


@dataclass(frozen=True)
class DownloadRateLimit:
    """The floor: at least ``min_bytes_per_s`` averaged over every ``window_s`` seconds.

    ``min_bytes_per_s == 0`` turns the floor off.
    """

    min_bytes_per_s: float = 64 * _KIB
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.min_bytes_per_s < 0:
            raise ValueError(f"min_bytes_per_s must be ≥ 0, got {self.min_bytes_per_s}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")

    @property
    def enabled(self) -> bool:
        return self.min_bytes_per_s > 0


class RateFloor:
    """Judges one download: feed it what arrived and when (monotonic seconds).

    Keeps ``(time, bytes so far)`` marks; the bytes of the last window are the total minus the
    mark at the window's start (the newest mark at or before it).
    """

    def __init__(self, limit: DownloadRateLimit, what: str, started_s: float) -> None:
        self._limit = limit
        self._what = what
        self._started_s = started_s
        self._total = 0
        self._marks: deque[tuple[float, int]] = deque([(started_s, 0)])

    def observe(self, size: int, now_s: float) -> None:
        """Counts ``size`` bytes arrived at ``now_s``; raises when the floor is broken."""
        self._total += size
        self._marks.append((now_s, self._total))
        self.check(now_s)

    def check(self, now_s: float) -> None:
        """Raises :class:`DownloadTooSlowError` when the last window fell below the floor."""
        window = self._limit.window_s
        if not self._limit.enabled or now_s - self._started_s < window:
            return
        cutoff = now_s - window
        while len(self._marks) > 1 and self._marks[1][0] <= cutoff:
            self._marks.popleft()
        in_window = self._total - self._marks[0][1]
        rate = in_window / window
        if rate < self._limit.min_bytes_per_s:
            raise DownloadTooSlowError(
                f"{self._what}: too slow, {rate / _KIB:.1f} KiB/s over the last {window:g} s "
                f"(minimum {self._limit.min_bytes_per_s / _KIB:g} KiB/s; "
                "MIN_DOWNLOAD_BYTES_PER_SEC, DOWNLOAD_RATE_WINDOW_SECS)"
            )


async def metered(
    chunks: AsyncIterator[bytes],
    limit: DownloadRateLimit | None,
    what: str,
    clock: Clock = time.monotonic,
) -> AsyncIterator[bytes]:
    """``chunks`` unchanged, judged by a :class:`RateFloor`; a wait for the next chunk that
    outlasts a whole window is judged too (at zero bytes), so a stalled body fails as well."""
    if limit is None or not limit.enabled:
        async for chunk in chunks:
            yield chunk
        return
    floor = RateFloor(limit, what, clock())
    iterator = chunks.__aiter__()
    while True:
        try:
            async with asyncio.timeout(limit.window_s):  # same task: the stream stays ours
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            floor.check(clock())
            raise DownloadTooSlowError(  # a silent window with bytes before it: still too slow
                f"{what}: too slow, nothing received for {limit.window_s:g} s "
                "(MIN_DOWNLOAD_BYTES_PER_SEC, DOWNLOAD_RATE_WINDOW_SECS)"
            ) from None
        floor.observe(len(chunk), clock())
        yield chunk
