"""Bearer tokens: the rotating domain token of a lease, and the DMS bearer source.

The domain token rotates every few minutes (each heartbeat may return a new one), so domain
requests read :meth:`DomainToken.current` immediately before every request, including every
part of a chunked upload. Tokens never appear in ``repr()`` or in error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from domain_client.errors import LeaseLost, TaskCancelled
from domain_client.timestamps import format_timestamp, utc_now

__all__ = ["AccessTokenSource", "DomainToken", "StaticTokenSource"]


class DomainToken:
    """The current domain-server bearer of one task.

    Args:
        token: the lease's ``access_token`` (may be empty: [PM] then sends an empty bearer).
        lease_expires_at: when the lease runs out; reading the token after that (minus
            ``skew``) raises :class:`LeaseLost`. ``None`` = no expiry check.
        skew: tolerated clock difference between DMS and this machine.
        now: clock, injectable for tests.
    """

    def __init__(
        self,
        token: str,
        *,
        lease_expires_at: datetime | None = None,
        skew: timedelta = timedelta(0),
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._token = token
        self._lease_expires_at = lease_expires_at
        self._skew = skew
        self._now = now
        self._revoked_stage: str | None = None
        self._lost_reason: str | None = None
        self._changed = asyncio.Event()
        self.refresh_hook: Callable[[], None] | None = None
        """Asks for an early heartbeat (set by the engine); used after a domain 401."""

    def __repr__(self) -> str:
        return f"DomainToken(<redacted>, lease_expires_at={self._lease_expires_at!r})"

    def current(self) -> str:
        """The token to send now.

        Raises:
            TaskCancelled: the task was cancelled (:meth:`revoke`).
            LeaseLost: the lease was lost (:meth:`mark_lost`) or has expired.
        """
        if self._revoked_stage is not None:
            raise TaskCancelled(self._revoked_stage)
        if self._lost_reason is not None:
            raise LeaseLost(self._lost_reason)
        expiry = self._lease_expires_at
        if expiry is not None and self._now() > expiry + self._skew:
            raise LeaseLost(f"lease lost: lease expired at {format_timestamp(expiry)}")
        return self._token

    def set(self, token: str) -> None:
        """Swap in a rotated token (from a heartbeat response)."""
        if token != self._token:
            self._token = token
            self._changed.set()
            self._changed = asyncio.Event()

    async def rotated_since(self, rejected: str, wait_s: float) -> bool:
        """Whether a token other than ``rejected`` is available now or within ``wait_s``.

        With a :attr:`refresh_hook` (the engine's early heartbeat) it is asked for and awaited
        ([SDK] §2.1); without one, only an already rotated token counts.
        """
        if self.current() != rejected:
            return True
        if self.refresh_hook is None or wait_s <= 0:
            return False
        changed = self._changed
        self.refresh_hook()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), wait_s)
        return self.current() != rejected

    def set_lease_expiry(self, lease_expires_at: datetime | None) -> None:
        self._lease_expires_at = lease_expires_at

    def revoke(self, stage: str = "domain request") -> None:
        """The task was cancelled: later reads raise ``TaskCancelled(stage)``."""
        self._revoked_stage = stage

    def mark_lost(self, reason: str) -> None:
        """The lease is gone: later reads raise ``LeaseLost(reason)``."""
        self._lost_reason = reason


class AccessTokenSource(Protocol):
    """Where DMS calls get their bearer (the DDS SIWE token)."""

    async def token(self) -> str:
        """A currently valid bearer (may log in)."""
        ...

    def invalidate(self, token: str) -> None:
        """DMS rejected ``token`` (401): the next :meth:`token` must not return it."""
        ...


class StaticTokenSource:
    """A fixed bearer (tests, or a DMS that needs no login). ``invalidate`` is recorded."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.invalidated: list[str] = []

    def __repr__(self) -> str:
        return "StaticTokenSource(<redacted>)"

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)

    def set(self, token: str) -> None:
        self._token = token
