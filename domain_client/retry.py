"""The one retry policy of domain_client: bounded exponential backoff with jitter that honours
``Retry-After``, and a runner that never re-sends a write whose outcome is unknown before
asking whether it already took effect.

Retryable: every transport error (connect, reset, timeout) and the statuses of
:attr:`RetryPolicy.statuses` (5xx but 501, 408, 425, 429). An attempt's *outcome is unknown*
when the server may have acted on it: a 5xx answer, or a transport error after the request
was sent (a read timeout, a reset connection). A connect failure, 408, 425 or 429 means it was
not acted on. For writes that are not idempotent (create, chunked-upload completion) the
caller passes ``find_stored``: it runs before each re-send that follows an unknown outcome (and
once after the last attempt) and may return the stored result instead (e.g. the item found by
name), so that a retry never creates a duplicate.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from domain_client.errors import DomainClientError, ResponseError, TransportError, with_context

__all__ = [
    "NO_RETRY",
    "Retrier",
    "RetryPolicy",
    "outcome_unknown",
    "parse_retry_after",
    "retrying",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
"""Wall-clock time, seconds since the Unix epoch (only used to read an HTTP-date)."""

_DEFAULT_STATUSES = frozenset({408, 425, 429, *range(500, 600)} - {501, 505})
"""Worth another try: request timeout, too early, too many requests, and every 5xx but
501 Not Implemented and 505 HTTP Version Not Supported (those never heal)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    Retry ``k`` (0-based) after a retryable failure waits ``uniform(d/2, d)`` seconds with
    ``d = min(max_delay_s, base_delay_s * 2**k)``, unless the answer carried ``Retry-After``:
    then exactly that many seconds (a delta or an HTTP-date), at most ``max_retry_after_s``.

    Attributes:
        attempts: total tries, including the first (1 = no retry, no lookups).
        base_delay_s: delay scale of the first retry, seconds.
        max_delay_s: upper bound of any backoff delay, seconds.
        max_retry_after_s: upper bound of a delay asked for by ``Retry-After``, seconds.
        statuses: HTTP statuses worth retrying; transport errors are always retried.
    """

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0
    statuses: frozenset[int] = field(default=_DEFAULT_STATUSES)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if min(self.base_delay_s, self.max_delay_s, self.max_retry_after_s) < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay_s(self, retry_index: int, rng: random.Random) -> float:
        """Backoff before retry ``retry_index`` (0-based), seconds, jittered."""
        cap = min(self.max_delay_s, self.base_delay_s * 2**retry_index)
        return rng.uniform(cap / 2, cap)

    def retryable(self, exc: DomainClientError) -> bool:
        """Transport errors and the policy's statuses."""
        if isinstance(exc, TransportError):
            return True
        return isinstance(exc, ResponseError) and exc.status in self.statuses

    def wait_s(
        self, retry_index: int, exc: DomainClientError, rng: random.Random, now_s: float
    ) -> float:
        """Seconds to wait before retry ``retry_index`` after ``exc``: its ``Retry-After``
        (capped at ``max_retry_after_s``) when it has one, else the jittered backoff."""
        if isinstance(exc, ResponseError):
            asked = parse_retry_after(exc.retry_after, now_s)
            if asked is not None:
                return min(asked, self.max_retry_after_s)
        return self.delay_s(retry_index, rng)


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3): a non-negative integer
    of seconds, or an HTTP-date (a date in the past means 0). None when absent or unreadable.

    Args:
        value: the raw header value.
        now_s: the current wall-clock time, seconds since the Unix epoch.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may lack the zone
        return None
    seconds = when.timestamp() - now_s
    return max(0.0, seconds) if math.isfinite(seconds) else None


def outcome_unknown(exc: DomainClientError) -> bool:
    """True when the server may have acted on the failed request (5xx, or a transport error
    after the request was sent)."""
    if isinstance(exc, TransportError):
        return exc.request_sent
    return isinstance(exc, ResponseError) and 500 <= exc.status <= 599


@dataclass(frozen=True)
class Retrier:
    """Runs operations under one :class:`RetryPolicy`.

    Attributes:
        policy: attempts and delays.
        rng: jitter source (tests seed it).
        sleep: waits between attempts (tests record instead of sleeping).
        clock: wall-clock seconds since the epoch, to read ``Retry-After`` HTTP-dates.
    """

    policy: RetryPolicy
    rng: random.Random = field(default_factory=random.Random)
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.time

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        what: str | None = None,
        find_stored: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``operation`` until it succeeds, fails for good, or the attempts are spent.

        Args:
            operation: one attempt; raises a :class:`DomainClientError` on failure.
            what: names the step and the item (``"chunked upload completion of 'x'"``); when
                given, the error after the last attempt says ``<what>: gave up after N
                attempts`` (same class and status as the last failure, chained from it).
            find_stored: for writes that are not idempotent: after an unknown outcome it is
                awaited before every re-send, and once more when the last attempt failed; a
                non-None result (the write found stored) is returned as the operation's result
                and nothing more is sent. Not called under a one-attempt policy.
        """
        attempts = self.policy.attempts
        unknown = False  # an earlier attempt may have taken effect
        for index in range(attempts):
            try:
                return await operation()
            except DomainClientError as exc:
                unknown = unknown or outcome_unknown(exc)
                if not self.policy.retryable(exc):
                    raise
                if index + 1 >= attempts:
                    if attempts == 1:
                        raise
                    if find_stored is not None and unknown:
                        stored = await find_stored()  # the last attempt may have taken effect
                        if stored is not None:
                            return stored
                    if what is None:
                        raise
                    raise _gave_up(exc, what, attempts) from exc
                delay = self.policy.wait_s(index, exc, self.rng, self.clock())
                logger.info(
                    "%s failed (%s); retry %d of %d in %.2f s",
                    what or "domain request",
                    exc,
                    index + 1,
                    attempts - 1,
                    delay,
                )
                await self.sleep(delay)
                if find_stored is not None and unknown:
                    stored = await find_stored()
                    if stored is not None:
                        return stored
        raise AssertionError("unreachable: the loop returns or raises")


def _gave_up(exc: DomainClientError, what: str, attempts: int) -> DomainClientError:
    """The last failure, re-made to say which step and item gave up (a transport error's
    message already names the step)."""
    spent = f"gave up after {attempts} attempts"
    if isinstance(exc, TransportError) and what in exc.detail:
        return with_context(exc, spent)
    return with_context(exc, f"{what}: {spent}")


async def retrying(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run an idempotent ``operation`` up to ``policy.attempts`` times while it fails
    retryably (kept for existing callers; :class:`Retrier` is the full interface)."""
    retrier = Retrier(policy, rng or random.Random(), sleep)
    return await retrier.run(operation)
