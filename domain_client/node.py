"""Wiring of a lease-mode node from :class:`~domain_client.config.NodeConfig`.

:func:`build_lease_node` builds the registrar, the DDS token manager, the DMS client and the
task engine; :meth:`LeaseNode.run` runs registration, token refresh and the poll loop until
``stop`` is set (the app starts it in its FastAPI ``lifespan``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import httpx

from domain_client.auth import DdsAuth, TokenConfig
from domain_client.config import NodeConfig, normalise_capabilities
from domain_client.dds import DdsClient
from domain_client.dms import DmsClient
from domain_client.engine import EngineConfig, Handler, TaskEngine
from domain_client.registration import Registrar, RegistrationConfig
from domain_client.siwe import Wallet

__all__ = ["LeaseNode", "build_lease_node"]


@dataclass
class LeaseNode:
    """The parts of a lease-mode node, ready to run (``run``, or ``start`` / ``stop``).

    ``slot``, when set, is held around every poll cycle (see :meth:`TaskEngine.run_forever`).
    """

    registrar: Registrar
    auth: DdsAuth
    dms: DmsClient
    engine: TaskEngine
    slot: asyncio.Lock | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        """Run in a background task (call from a running event loop, e.g. a FastAPI lifespan)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(self._stop), name="lease-node")

    async def stop(self) -> None:
        """Stop polling; a task running now is cancelled locally (no receipt is sent)."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task])

    @property
    def healthy(self) -> bool:
        """True while the background loop runs (False before ``start`` and after it ended)."""
        return self._task is not None and not self._task.done()

    async def run(self, stop: asyncio.Event) -> None:
        """Register, keep the DDS token fresh and poll DMS until ``stop`` is set."""
        self.auth.start()
        registration = asyncio.create_task(self.registrar.run(stop), name="dds-registration")
        try:
            await self.engine.run_forever(stop, self.slot)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await registration
            await self.auth.close()


def build_lease_node(
    config: NodeConfig,
    http: httpx.AsyncClient,
    handlers: Mapping[str, Handler],
    *,
    capabilities: Iterable[str] | None = None,
    engine: EngineConfig | None = None,
    rng: random.Random | None = None,
    slot: asyncio.Lock | None = None,
) -> LeaseNode:
    """Build a lease-mode node.

    Args:
        config: the lease-mode settings (the app builds them from its environment).
        http: the shared client.
        handlers: capability → handler; must cover ``capabilities``.
        capabilities: what to register (sorted, de-duplicated); default: the handlers' keys.
        engine: engine settings to start from (``client_id``, ``capabilities`` and the poll and
            heartbeat settings are taken from ``config``).
        slot: a lock held around every poll cycle, shared with other work on the same worker
            (the app's worker slot): while someone else holds it, nothing is leased.

    Raises:
        ConfigError: lease mode is not configured, or the capabilities are unusable.
        InvalidKeyError: ``SECP256K1_PRIVHEX`` is not a usable key.
        ValueError: a registered capability has no handler.
    """
    registered = normalise_capabilities(handlers if capabilities is None else capabilities)
    missing = sorted(set(registered) - set(handlers))
    if missing:
        raise ValueError(f"no handler for registered capabilities: {', '.join(missing)}")
    reg_secret, privhex = config.secrets()
    wallet = Wallet.from_hex(privhex)
    dds = DdsClient(http, config.dds_base_url, timeout_s=config.request_timeout_secs)
    registrar = Registrar(dds, wallet, _registration(config, reg_secret, registered), rng=rng)
    auth = DdsAuth(dds, wallet, registrar=registrar, config=_tokens(config), rng=rng)
    dms = DmsClient(http, config.dms_base_url, auth, timeout_s=config.request_timeout_secs)
    settings = replace(
        engine or EngineConfig(client_id=config.client_id),
        client_id=config.client_id,
        capabilities=registered,
        poll_backoff_ms_min=config.poll_backoff_ms_min,
        poll_backoff_ms_max=config.poll_backoff_ms_max,
        heartbeat_min_ratio=config.heartbeat_min_ratio,
        heartbeat_max_ratio=config.heartbeat_max_ratio,
    )
    task_engine = TaskEngine(dms, http, handlers, settings, registrar=registrar, rng=rng)
    return LeaseNode(registrar=registrar, auth=auth, dms=dms, engine=task_engine, slot=slot)


def _registration(
    config: NodeConfig, reg_secret: str, capabilities: tuple[str, ...]
) -> RegistrationConfig:
    return RegistrationConfig(
        reg_secret=reg_secret,
        capabilities=capabilities,
        version=config.node_version,
        interval_s=config.register_interval_secs,
        max_retry=config.register_max_retry,
    )


def _tokens(config: NodeConfig) -> TokenConfig:
    return TokenConfig(
        safety_ratio=config.token_safety_ratio,
        max_retries=config.token_reauth_max_retries,
        jitter_ms=config.token_reauth_jitter_ms,
    )
