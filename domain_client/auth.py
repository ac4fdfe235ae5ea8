"""The DDS SIWE token manager: the bearer of every DMS call (protocol §1.5).

- :meth:`DdsAuth.token` returns the cached token until its refresh time, else logs in;
  concurrent callers share one in-flight login.
- Refresh time = now + TTL × ``safety_ratio`` ± uniform jitter of up to ``jitter_ms``, clamped
  to [now + 1 ms, expiry]. :meth:`DdsAuth.start` runs a background task that logs in again at
  that time. A token already expired on arrival is an error.
- A login is tried up to ``1 + max_retries`` times with uniform(0, jitter) pauses.
- SIWE verify answering 403 or 404 means the registration is gone: the registrar is put back
  to ``disconnected`` and the login fails at once.
- :meth:`DdsAuth.invalidate` (a DMS 401) forces a new login on the next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain_client.config import (
    DEFAULT_TOKEN_REAUTH_JITTER_MS,
    DEFAULT_TOKEN_REAUTH_MAX_RETRIES,
    DEFAULT_TOKEN_SAFETY_RATIO,
)
from domain_client.dds import DdsClient
from domain_client.errors import (
    DomainClientError,
    LoginError,
    NotRegisteredError,
    ResponseError,
)
from domain_client.models import SiweToken
from domain_client.registration import Registrar
from domain_client.siwe import Wallet, build_siwe_message
from domain_client.timestamps import utc_now

__all__ = ["DdsAuth", "TokenConfig", "refresh_time"]

logger = logging.getLogger(__name__)

_REGISTRATION_GONE = frozenset({403, 404})


@dataclass(frozen=True)
class TokenConfig:
    """``TOKEN_*`` settings (protocol §3.9).

    Attributes:
        safety_ratio: refresh after this fraction of the token's lifetime.
        max_retries: extra login attempts after a failed one.
        jitter_ms: refresh-time jitter and the upper bound of the pause between attempts.
        retry_after_failure_s: background refresher's pause after a failed refresh, seconds.
    """

    safety_ratio: float = DEFAULT_TOKEN_SAFETY_RATIO
    max_retries: int = DEFAULT_TOKEN_REAUTH_MAX_RETRIES
    jitter_ms: int = DEFAULT_TOKEN_REAUTH_JITTER_MS
    retry_after_failure_s: float = 5.0


def refresh_time(
    now: datetime, expires_at: datetime, ratio: float, jitter_ms: int, rng: random.Random
) -> datetime:
    """When to log in again: ``now + ttl*ratio ± jitter``, clamped to [now + 1 ms, expiry]."""
    ttl = expires_at - now
    jitter = timedelta(milliseconds=rng.uniform(-jitter_ms, jitter_ms))
    due = now + ttl * ratio + jitter
    return min(max(due, now + timedelta(milliseconds=1)), expires_at)


class DdsAuth:
    """The DDS bearer for DMS calls (implements ``AccessTokenSource``).

    Args:
        dds: the DDS client.
        wallet: the node's key.
        registrar: when given, ``token()`` refuses before registration completes and verify
            403/404 put it back to ``disconnected``.
        config: refresh and retry settings.
    """

    def __init__(
        self,
        dds: DdsClient,
        wallet: Wallet,
        *,
        registrar: Registrar | None = None,
        config: TokenConfig | None = None,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._dds = dds
        self._wallet = wallet
        self._registrar = registrar
        self._config = config or TokenConfig()
        self._rng = rng or random.Random()
        self._now = now
        self._token: SiweToken | None = None
        self._stale = False
        self.refresh_at: datetime | None = None
        self.logins = 0
        """Completed successful logins (observability and tests)."""
        self._inflight: asyncio.Task[SiweToken] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._new_token = asyncio.Event()
        self._closed = False

    def __repr__(self) -> str:
        return f"DdsAuth(address={self._wallet.address!r}, refresh_at={self.refresh_at!r})"

    async def token(self) -> str:
        """A valid DDS access token, logging in when needed.

        Raises:
            NotRegisteredError: a registrar was given and the node is not registered.
            LoginError: every login attempt failed.
        """
        current = self._token
        if current is not None and not self._stale and self._fresh():
            return current.access_token
        return (await self._shared_login()).access_token

    def _fresh(self) -> bool:
        return self.refresh_at is not None and self._now() < self.refresh_at

    def invalidate(self, token: str) -> None:
        """DMS rejected ``token``: the next ``token()`` logs in again (unless already renewed)."""
        if self._token is not None and self._token.access_token == token:
            self._stale = True

    def start(self) -> None:
        """Start the background refresher (call from a running event loop)."""
        if self._refresher is None and not self._closed:
            self._refresher = asyncio.create_task(self._refresh_forever(), name="dds-token")

    async def close(self) -> None:
        """Stop the refresher and cancel an in-flight login; no refresh happens afterwards."""
        self._closed = True
        for task in (self._refresher, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, DomainClientError):
                    await task
        self._refresher = self._inflight = None

    async def _shared_login(self) -> SiweToken:
        if self._closed:
            raise LoginError("DDS token manager is closed")
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._login_with_retries(), name="dds-login")
        login = self._inflight
        try:
            return await asyncio.shield(login)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if login.cancelled() and caller is not None and not caller.cancelling():
                raise LoginError("DDS token manager closed during login") from None
            raise

    async def _login_with_retries(self) -> SiweToken:
        if self._registrar is not None and self._registrar.state != "registered":
            raise NotRegisteredError(
                f"cannot log in to DDS: registration is {self._registrar.state}"
            )
        attempts = 1 + max(0, self._config.max_retries)
        for attempt in range(attempts):
            try:
                return self._accept(await self._login_once())
            except DomainClientError as exc:
                if self._registration_gone(exc) or attempt + 1 == attempts:
                    raise LoginError(f"DDS SIWE login failed: {exc}") from exc
                logger.warning("DDS SIWE login attempt %d failed: %s", attempt + 1, exc)
            await asyncio.sleep(self._rng.uniform(0, self._config.jitter_ms / 1000))
        raise AssertionError("unreachable: the loop returns or raises")

    async def _login_once(self) -> SiweToken:
        nonce = await self._dds.request_nonce(self._wallet.address)
        message = build_siwe_message(nonce, self._wallet.address)
        signature = self._wallet.sign_personal(message)
        try:
            return await self._dds.verify(
                address=self._wallet.address, message=message, signature=signature
            )
        except ResponseError as exc:
            if exc.status in _REGISTRATION_GONE and self._registrar is not None:
                logger.warning("DDS verify answered %d: registering again", exc.status)
                self._registrar.mark_disconnected()
            raise

    def _registration_gone(self, exc: DomainClientError) -> bool:
        return isinstance(exc, ResponseError) and exc.status in _REGISTRATION_GONE

    def _accept(self, token: SiweToken) -> SiweToken:
        now = self._now()
        if token.expires_at <= now:
            raise LoginError("DDS returned an access token that has already expired")
        self._token = token
        self._stale = False
        self.refresh_at = refresh_time(
            now, token.expires_at, self._config.safety_ratio, self._config.jitter_ms, self._rng
        )
        self.logins += 1
        self._new_token.set()
        return token

    async def _refresh_forever(self) -> None:
        while not self._closed:
            if self.refresh_at is None:
                self._new_token.clear()
                await self._new_token.wait()
                continue
            delay = (self.refresh_at - self._now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            try:
                await self._shared_login()
            except DomainClientError as exc:
                logger.warning("background DDS token refresh failed: %s", exc)
                await asyncio.sleep(self._config.retry_after_failure_s)
