"""DDS wallet registration loop (protocol §1.4, [PM] posemesh-node-registration 0.2.1).

State machine: ``disconnected`` → ``registering`` → ``registered``. Once registered the loop
parks (re-checking every second) and never re-registers on a timer; it registers again only
after :meth:`Registrar.mark_disconnected` (a SIWE verify answered 403 or 404).

Backoff after a failed attempt:

- 409 "conflict" (an existing online node): ``interval_s``; warning at most every 180 s;
- retryable (408, 429, 5xx, transport, bad nonce body): ``min(2**n, 60) * uniform(0.8, 1.2)``
  seconds for the n-th consecutive retryable failure; when ``max_retry >= 0`` and n reaches it,
  ``interval_s`` and n restarts;
- any other 4xx, or no capabilities: ``interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from domain_client.config import DEFAULT_REGISTER_INTERVAL_SECS, DEFAULT_REGISTER_MAX_RETRY
from domain_client.dds import DdsClient
from domain_client.errors import DomainClientError, ResponseError
from domain_client.siwe import Wallet, build_siwe_message

__all__ = [
    "AttemptOutcome",
    "Registrar",
    "RegistrationConfig",
    "RegistrationState",
    "classify_failure",
]

logger = logging.getLogger(__name__)

RegistrationState = Literal["disconnected", "registering", "registered"]
AttemptOutcome = Literal["registered", "conflict", "retryable", "slow_retry"]
_RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RegistrationConfig:
    """What to register and how patiently.

    Attributes:
        reg_secret: ``REG_SECRET`` (never logged, not in ``repr``).
        capabilities: advertised capabilities (sorted, de-duplicated by ``NodeConfig``).
        version: node version (semver).
        interval_s: ``REGISTER_INTERVAL_SECS``: cooldown after a conflict or slow retry.
        max_retry: ``REGISTER_MAX_RETRY``: retryable failures before a cooldown (-1 = never).
        park_check_s: how often a registered loop re-checks its state, seconds.
        conflict_log_every_s: minimum spacing of "conflict" warnings, seconds.
    """

    reg_secret: str = field(repr=False)
    capabilities: tuple[str, ...]
    version: str
    interval_s: float = DEFAULT_REGISTER_INTERVAL_SECS
    max_retry: int = DEFAULT_REGISTER_MAX_RETRY
    park_check_s: float = 1.0
    conflict_log_every_s: float = 180.0


def classify_failure(exc: Exception) -> AttemptOutcome:
    """The retry class of a failed nonce or register call (protocol §1.4 table)."""
    if isinstance(exc, ResponseError):
        if exc.status == 409:
            return "conflict"
        if exc.status in _RETRYABLE_STATUSES or exc.status >= 500:
            return "retryable"
        return "slow_retry"
    # Transport errors, an unusable nonce body and any other failure: retry with backoff.
    return "retryable"


class Registrar:
    """Keeps the node registered with DDS.

    Args:
        dds: the DDS client.
        wallet: the node's key.
        config: secret, capabilities, version and timing.
        rng: jitter source (seedable for tests).
    """

    def __init__(
        self,
        dds: DdsClient,
        wallet: Wallet,
        config: RegistrationConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dds = dds
        self._wallet = wallet
        self._config = config
        self._rng = rng or random.Random()
        self._clock = clock
        self._state: RegistrationState = "disconnected"
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._retryable_failures = 0
        self._last_conflict_warning: float | None = None

    @property
    def state(self) -> RegistrationState:
        return self._state

    def _set_state(self, state: RegistrationState) -> None:
        if state != self._state:
            logger.info("DDS registration: %s -> %s", self._state, state)
        self._state = state
        self._changed.set()

    def mark_disconnected(self) -> None:
        """The registration is no longer valid (SIWE verify 403/404): register again."""
        self._set_state("disconnected")

    async def attempt(self) -> AttemptOutcome:
        """One registration attempt: fresh nonce, sign, register-wallet."""
        async with self._lock:
            if not self._config.capabilities:
                logger.warning("DDS registration skipped: no capabilities to advertise")
                return "slow_retry"
            self._set_state("registering")
            try:
                await self._register_once()
            except DomainClientError as exc:
                self._set_state("disconnected")
                return self._log_failure(classify_failure(exc), exc)
            self._set_state("registered")
            self._retryable_failures = 0
            return "registered"

    async def _register_once(self) -> None:
        nonce = await self._dds.request_nonce(self._wallet.address)
        message = build_siwe_message(nonce, self._wallet.address)
        await self._dds.register_wallet(
            message=message,
            signature=self._wallet.sign_personal(message),
            reg_secret=self._config.reg_secret,
            capabilities=self._config.capabilities,
            version=self._config.version,
        )

    def _log_failure(self, outcome: AttemptOutcome, exc: DomainClientError) -> AttemptOutcome:
        if outcome == "conflict":
            now = self._clock()
            last = self._last_conflict_warning
            if last is None or now - last >= self._config.conflict_log_every_s:
                logger.warning("DDS registration blocked by an existing online node (%s)", exc)
                self._last_conflict_warning = now
        else:
            logger.warning("DDS registration failed (%s): %s", outcome, exc)
        return outcome

    def delay_after(self, outcome: AttemptOutcome) -> float:
        """Seconds to wait before the next attempt; updates the retryable-failure count."""
        if outcome != "retryable":
            self._retryable_failures = 0
            return 0.0 if outcome == "registered" else self._config.interval_s
        self._retryable_failures += 1
        n = self._retryable_failures
        if 0 <= self._config.max_retry <= n:
            self._retryable_failures = 0
            return self._config.interval_s
        return float(min(2**n, 60)) * self._rng.uniform(0.8, 1.2)

    async def run(self, stop: asyncio.Event) -> None:
        """Register, then park; re-register whenever the state drops to ``disconnected``."""
        while not stop.is_set():
            if self._state == "registered":
                await _wait(stop, self._config.park_check_s)
                continue
            outcome = await self.attempt()
            await _wait(stop, self.delay_after(outcome))

    async def wait_registered(self, stop: asyncio.Event, poll_s: float = 1.0) -> bool:
        """Wait until registered (re-checking every ``poll_s``); False if ``stop`` came first."""
        while self._state != "registered":
            if stop.is_set():
                return False
            self._changed.clear()
            waits = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._changed.wait()),
            ]
            try:
                await asyncio.wait(waits, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
        return True


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
