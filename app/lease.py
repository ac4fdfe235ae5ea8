"""Lease mode: the node registers with DDS, logs in, leases tasks from DMS and reports them.

:class:`LeaseModeDoor` is the app's ``LeaseDoor`` over ``domain_client``'s lease node
(``build_lease_node``: registrar, SIWE token manager, DMS client, task engine). One loop polls:
:meth:`TaskEngine.run_forever`, which holds the supervisor's worker slot around every cycle, so a
push job and a leased task never run at once and nothing is leased while a push job runs. The
engine's handler is :meth:`JobService.run_leased` (the job is recorded, run by the splatter
runner, and its failure re-raised for the fail receipt); ``DELETE /jobs/{id}`` cancels through
the engine (``cancel_current``), so a cancelled lease job sends no receipt, exactly like a DMS
cancel or a lost lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import replace

from app import CAPABILITY
from app.services import Services
from domain_client.engine import EngineConfig, TaskContext
from domain_client.node import LeaseNode, build_lease_node

__all__ = ["HANDLER_GRACE_SLACK_S", "LeaseModeDoor"]

log = logging.getLogger(__name__)

#: How much longer than ``CANCEL_GRACE_SECS`` the engine waits for a cancelled handler: the
#: runner needs the grace period to stop its child, then a moment to record the job's end.
HANDLER_GRACE_SLACK_S = 5.0


class LeaseModeDoor:
    """Lease mode as a ``LeaseDoor``: built and started by the FastAPI lifespan.

    Args:
        engine: engine settings to start from (tests shorten intervals); the poll, heartbeat and
            identity settings always come from the node's ``Settings``.
        rng: randomness of backoffs and jitter (tests pass a seeded one).
    """

    def __init__(
        self, *, engine: EngineConfig | None = None, rng: random.Random | None = None
    ) -> None:
        self._engine_config = engine
        self._rng = rng
        self._node: LeaseNode | None = None
        self._services: Services | None = None

    @property
    def node(self) -> LeaseNode:
        """The running lease node (after :meth:`start`)."""
        if self._node is None:
            raise RuntimeError("the lease door has not been started")
        return self._node

    async def start(self, services: Services) -> None:
        """Builds the lease node on the shared HTTP client and starts its loop."""
        settings = services.settings
        config = settings.node_config()
        engine = replace(
            self._engine_config or EngineConfig(client_id=config.client_id),
            cancel_grace_s=settings.cancel_grace_secs + HANDLER_GRACE_SLACK_S,
            download_rate=settings.download_rate,
        )
        self._services = services
        self._node = build_lease_node(
            config,
            services.http,
            {CAPABILITY: self._handle},
            capabilities=[CAPABILITY],
            engine=engine,
            rng=self._rng,
            slot=services.supervisor.slot,
        )
        self._node.start()
        log.info(
            "lease mode started",
            extra={"dms": config.dms_base_url, "dds": config.dds_base_url},
        )

    async def stop(self) -> None:
        """Stops leasing; a running task may drain for ``SHUTDOWN_DRAIN_SECS``, then is cancelled.

        While draining, this holds nothing new: once the running task ends, the worker slot is
        taken here, so the loop cannot lease another one before it is told to stop.
        """
        if self._node is None or self._services is None:
            return
        supervisor = self._services.supervisor
        drain = self._services.settings.shutdown_drain_secs
        held = False
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(supervisor.slot.acquire(), drain)
                held = True
        try:
            await self._node.stop()
        finally:
            if held:
                supervisor.slot.release()
        log.info("lease mode stopped", extra={"outcomes": dict(self._node.engine.outcomes)})

    @property
    def healthy(self) -> bool:
        """True while the lease loop runs."""
        return self._node is not None and self._node.healthy

    async def _handle(self, ctx: TaskContext) -> None:
        assert self._services is not None  # set before the node starts
        await self._services.jobs.run_leased(ctx, cancel=self._cancel_current)

    def _cancel_current(self) -> None:
        self.node.engine.cancel_current("cancelled on the node (DELETE /jobs or shutdown)")
