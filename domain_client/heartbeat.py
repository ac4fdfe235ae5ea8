"""The heartbeat driver of one task (protocol §1.8, §5 #5, #6, #11).

Cadence: the next heartbeat is due after ``TTL × uniform(min_ratio, max_ratio)`` ([PM]; TTL =
lease expiry − now), but never later than ``max_interval_s`` nor half the domain token's
remaining life ([SDK]'s bound); a due time already past becomes 100 ms ([PM]). Every progress
or event update wakes the driver at once; updates arriving while a heartbeat is in flight are
coalesced into the next one, which carries the latest progress (replace semantics) and every
unacknowledged event (at-least-once: the sent prefix is dropped only after a 2xx); the
bookkeeping is :class:`~domain_client.delivery.Outbox`, shared with the push door.

A heartbeat failure of any kind loses the lease; ``cancel: true`` cancels it. Either way the
session's cancel flag is set and no receipt may be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from domain_client.config import DEFAULT_HEARTBEAT_RATIOS
from domain_client.delivery import Outbox, ProgressReporter
from domain_client.dms import MAX_PROGRESS_BYTES, DmsClient
from domain_client.errors import InvalidInputError, LeaseLost
from domain_client.lease import LeaseSession, Verdict
from domain_client.timestamps import utc_now

__all__ = ["DriverOutcome", "HeartbeatDriver", "ProgressReporter", "heartbeat_delay_s"]

logger = logging.getLogger(__name__)

DriverOutcome = Literal["completed", "cancelled", "lost"]
MIN_DELAY_S = 0.1


def heartbeat_delay_s(
    now: datetime,
    lease_expires_at: datetime | None,
    token_expires_at: datetime | None,
    *,
    min_ratio: float,
    max_ratio: float,
    max_interval_s: float,
    rng: random.Random,
) -> float:
    """Seconds until the next TTL-driven heartbeat (see module docstring)."""
    delay = max_interval_s
    if lease_expires_at is not None:
        ttl = (lease_expires_at - now).total_seconds()
        delay = min(delay, ttl * rng.uniform(min_ratio, max_ratio))
    if token_expires_at is not None:
        delay = min(delay, (token_expires_at - now).total_seconds() / 2)
    return delay if delay > 0 else MIN_DELAY_S


class HeartbeatDriver:
    """Sends the heartbeats of one session; implements :class:`ProgressReporter`.

    Args:
        dms: the DMS client.
        session: the live lease (updated with every response).
        min_ratio, max_ratio: [PM] ``HEARTBEAT_MIN_RATIO`` / ``HEARTBEAT_MAX_RATIO``.
        max_interval_s: [SDK] upper bound between heartbeats, seconds.
    """

    def __init__(
        self,
        dms: DmsClient,
        session: LeaseSession,
        *,
        min_ratio: float = DEFAULT_HEARTBEAT_RATIOS[0],
        max_ratio: float = DEFAULT_HEARTBEAT_RATIOS[1],
        max_interval_s: float = 30.0,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._dms = dms
        self._session = session
        self._min_ratio = min_ratio
        self._max_ratio = max_ratio
        self._max_interval_s = max_interval_s
        self._rng = rng or random.Random()
        self._now = now
        self._outbox = Outbox()
        self._wake = self._outbox.changed
        self._stopping = False
        self._beat_lock = asyncio.Lock()
        self.sent = 0
        """Heartbeats answered with 2xx."""
        self.next_due: float | None = None
        """``time.monotonic()`` of the next TTL-driven heartbeat while the driver runs."""

    # --- ProgressReporter ------------------------------------------------------------------

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        encoded = json.dumps(progress, separators=(",", ":"), default=str).encode()
        if len(encoded) > MAX_PROGRESS_BYTES:
            raise InvalidInputError(
                f"progress is {len(encoded)} bytes of JSON; the limit is {MAX_PROGRESS_BYTES}"
            )
        self._outbox.set_progress(json.loads(encoded))

    def log_event(self, event: Mapping[str, Any]) -> None:
        self._outbox.add_event(json.loads(json.dumps(event, default=str)))

    def request_heartbeat(self) -> None:
        """Send a heartbeat now (e.g. the domain server rejected the current token)."""
        self._wake.set()

    @property
    def progress(self) -> Any:
        return self._outbox.progress

    @property
    def pending_events(self) -> list[Mapping[str, Any]]:
        return self._outbox.pending_events

    # --- loop ------------------------------------------------------------------------------

    async def run(self) -> DriverOutcome:
        """Heartbeat until stopped ("completed"), cancelled or lost."""
        while not self._stopping:
            delay = self._next_delay()
            self.next_due = time.monotonic() + delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if self._stopping:
                break
            verdict = await self.beat()
            if verdict.kind != "running":
                return verdict.kind
        self.next_due = None
        return "completed" if self._session.state == "running" else self._session.state

    def stop(self) -> None:
        """End :meth:`run` after any heartbeat in flight."""
        self._stopping = True
        self._wake.set()

    def _next_delay(self) -> float:
        lease = self._session.lease
        return heartbeat_delay_s(
            self._now(),
            lease.effective_lease_expires_at,
            lease.access_token_expires_at,
            min_ratio=self._min_ratio,
            max_ratio=self._max_ratio,
            max_interval_s=self._max_interval_s,
            rng=self._rng,
        )

    async def beat(self) -> Verdict:
        """Send one heartbeat with the latest progress and all unacknowledged events."""
        async with self._beat_lock:
            if self._session.state != "running":
                return Verdict(self._session.state)
            batch = self._outbox.take()
            try:
                update = await self._dms.heartbeat(
                    self._session.task_id, batch.progress, batch.events
                )
            except LeaseLost as exc:
                return self._session.lose(str(exc))
            self._outbox.acknowledge(batch)
            self.sent += 1
            return self._session.apply(update)
