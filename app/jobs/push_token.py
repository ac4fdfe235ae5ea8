"""The domain token of a push job: replaced by ``PUT /jobs/{id}/token``, awaited after a 401.

Nobody heartbeats a pushed job, so its token is never rotated for it. When the domain server
answers 401, :class:`DomainClient` asks the token whether another one is available
(:meth:`PushToken.rotated_since`); a push token then waits up to ``TOKEN_WAIT_SECS`` for the
pusher to ``PUT`` a fresh one, telling the job's listeners (store, ``progress_url``) that it is
waiting. The wait ends early when the job is cancelled. A push job queued again after a node
restart has no token at all (none is ever stored) and waits the same way before it runs
(:meth:`PushToken.arrives`). A wait that times out marks the token
lost: every later domain call of the job fails at once with :attr:`PushToken.gave_up`, so the
job fails with that reason instead of waiting again for every remaining request.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from domain_client.errors import TaskCancelled
from domain_client.tokens import DomainToken

__all__ = ["PushToken", "TokenWaitListener"]


class TokenWaitListener(Protocol):
    """Told when a push job starts and stops waiting for a token."""

    def waiting(self, wait_s: float) -> None: ...

    def resumed(self) -> None: ...


class PushToken(DomainToken):
    """A push job's bearer (never shown in ``repr``), replaceable while the job is active.

    Args:
        token: the envelope's ``access_token``.
        expires_at: the envelope's ``access_token_expires_at`` (informational).
    """

    def __init__(self, token: str, expires_at: datetime | None = None) -> None:
        super().__init__(token)
        self.expires_at = expires_at
        self.cancelled: asyncio.Event | None = None
        self.listener: TokenWaitListener | None = None
        self.gave_up: str | None = None
        """Why the job stopped waiting for a token (``None`` while it has not)."""

    def __repr__(self) -> str:
        return f"PushToken(<redacted>, expires_at={self.expires_at!r})"

    def replace(self, token: str, expires_at: datetime | None) -> None:
        """Swaps in a fresh token (``PUT /jobs/{id}/token``); wakes a waiting request."""
        self.expires_at = expires_at
        self.set(token)

    async def rotated_since(self, rejected: str, wait_s: float) -> bool:
        """Whether a token other than ``rejected`` is here now or arrives within ``wait_s``.

        Raises:
            TaskCancelled: the job was cancelled while waiting.
        """
        gave_up = (
            "the domain server refused the job's token (401) and no new token arrived "
            f"within {wait_s:g} s (TOKEN_WAIT_SECS; hand one over with PUT /jobs/{{id}}/token)"
        )
        return await self._await_other(rejected, wait_s, gave_up)

    async def arrives(self, wait_s: float) -> bool:
        """Whether a token arrives within ``wait_s``: a push job queued again after a restart
        has none, only an empty one (tokens are never stored; see
        :meth:`JobService.resume_interrupted`).

        Raises:
            TaskCancelled: the job was cancelled while waiting.
        """
        gave_up = (
            f"node restarted: no domain token arrived within {wait_s:g} s (TOKEN_WAIT_SECS); "
            "a push job's token is never stored, so after a restart the job waits for "
            "PUT /jobs/{id}/token"
        )
        return await self._await_other("", wait_s, gave_up)

    async def _await_other(self, rejected: str, wait_s: float, gave_up: str) -> bool:
        if self.current() != rejected:
            return True
        changed = self._changed
        if self.listener is not None:
            self.listener.waiting(wait_s)
        await self._wait(changed, wait_s)
        if self.current() == rejected:
            self.gave_up = gave_up
            self.mark_lost(self.gave_up)
            return False
        if self.listener is not None:
            self.listener.resumed()
        return True

    async def _wait(self, changed: asyncio.Event, wait_s: float) -> None:
        waits = [asyncio.ensure_future(changed.wait())]
        if self.cancelled is not None:
            waits.append(asyncio.ensure_future(self.cancelled.wait()))
        try:
            await asyncio.wait(waits, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if self.cancelled is not None and self.cancelled.is_set():
            raise TaskCancelled("waiting for a domain token")
