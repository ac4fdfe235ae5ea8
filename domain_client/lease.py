"""One leased task's state: validation and heartbeat updates (protocol §1.6–1.8, §5 #7, #8).

A lease is accepted only with ``domain_id``, ``domain_server_url``, ``access_token``,
``access_token_expires_at`` and ``lease_expires_at`` present, both expiries in the future (up to
a clock-skew allowance) and ``cancel`` false ([SDK] strictness, §5 #8). A heartbeat response
is applied as [SDK] does: a changed task id, domain or capability, or a new lease expiry in the
past, is a lost lease; ``cancel: true`` or a terminal ``status`` is a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from domain_client.models import Lease, LeaseUpdate
from domain_client.timestamps import utc_now
from domain_client.tokens import DomainToken

__all__ = ["LeaseSession", "Verdict", "lease_problem"]

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"cancelled", "failed", "completed"})
VerdictKind = Literal["running", "cancelled", "lost"]


@dataclass(frozen=True)
class Verdict:
    """What a heartbeat response means for the task."""

    kind: VerdictKind
    reason: str = ""


def lease_problem(lease: Lease, now: datetime, skew: timedelta = timedelta(0)) -> str | None:
    """Why a lease must be dropped without any DMS call, or None if it is usable."""
    if lease.cancel:
        return "lease is already cancelled"
    missing = [
        name
        for name, value in (
            ("domain_id", lease.domain_id),
            ("domain_server_url", lease.domain_server_url),
            ("access_token", lease.access_token),
            ("access_token_expires_at", lease.access_token_expires_at),
            ("lease_expires_at", lease.effective_lease_expires_at),
        )
        if not value
    ]
    if missing:
        return f"lease missing {', '.join(missing)}"
    for name, moment in (
        ("lease_expires_at", lease.effective_lease_expires_at),
        ("access_token_expires_at", lease.access_token_expires_at),
    ):
        if moment is not None and moment + skew <= now:
            return f"lease {name} is in the past"
    return None


class LeaseSession:
    """The live lease of the task being run, kept current by heartbeats.

    Args:
        lease: the validated lease.
        skew: clock-skew allowance for expiry checks.
        now: clock (injectable).
    """

    def __init__(
        self,
        lease: Lease,
        *,
        skew: timedelta = timedelta(0),
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.lease = lease
        self.skew = skew
        self._now = now
        self.token = DomainToken(
            lease.access_token or "",
            lease_expires_at=lease.effective_lease_expires_at,
            skew=skew,
            now=now,
        )
        self.cancelled = asyncio.Event()
        self.state: VerdictKind = "running"
        self.on_server_url: Callable[[str], None] | None = None

    @property
    def task_id(self) -> str:
        return self.lease.task.id

    def apply(self, update: LeaseUpdate) -> Verdict:
        """Apply a heartbeat response; cancel or lose the session when it says so."""
        changed = self._changed_identity(update)
        if changed is not None:
            return self.lose(f"heartbeat changed task or Domain ({changed})")
        self.lease = self.lease.merged(update)
        if update.access_token:
            self.token.set(update.access_token)
        self.token.set_lease_expiry(
            self.lease.effective_lease_expires_at if update.lease_expires_at else None
        )
        if update.domain_server_url and self.on_server_url is not None:
            self.on_server_url(update.domain_server_url)
        if (
            update.lease_expires_at is not None
            and update.lease_expires_at + self.skew <= self._now()
        ):
            return self.lose("heartbeat returned a lease expiry in the past")
        if update.cancel or (update.status or "").lower() in TERMINAL_STATUSES:
            return self.cancel(f"DMS cancelled the task (status {update.status!r})")
        return Verdict("running")

    def _changed_identity(self, update: LeaseUpdate) -> str | None:
        task = self.lease.task
        checks = (
            ("task_id", update.task_id, task.id),
            ("task.id", update.task.id if update.task else None, task.id),
            ("task.capability", update.task.capability if update.task else None, task.capability),
            ("domain_id", update.domain_id, self.lease.domain_id),
        )
        for name, new, old in checks:
            if new is not None and new != old:
                return name
        return None

    def cancel(self, reason: str) -> Verdict:
        """DMS (or the node) cancelled the task: stop the runner, send no receipt."""
        if self.state == "running":
            self.state = "cancelled"
            logger.info("task %s cancelled: %s", self.task_id, reason)
            self.token.revoke("domain request")
        self.cancelled.set()
        return Verdict(self.state, reason)

    def lose(self, reason: str) -> Verdict:
        """The lease is gone: stop the runner, send no receipt."""
        if self.state == "running":
            self.state = "lost"
            logger.warning("task %s lease lost: %s", self.task_id, reason)
            self.token.mark_lost(f"lease lost: {reason}")
        self.cancelled.set()
        return Verdict(self.state, reason)
