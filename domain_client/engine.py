"""The protocol-level task engine: poll DMS, run a handler per lease, report (protocol §1.2–1.9).

One cycle (:meth:`TaskEngine.run_once`):

1. ``GET /tasks``; 204/409 → ``"no_work"``; an error → ``"error"``.
2. Validate the lease (§5 #8); a bad lease is dropped with no DMS call → ``"rejected"``.
3. No handler for the capability → fail ``no runner registered for capability: <cap>`` (§5 #10).
4. Initial heartbeat ``{"progress": {}, "events": []}``; if it fails nothing is reported
   (§5 #9) → ``"lost"``; its update (token, expiry, URL) is applied.
5. Build task storage from the merged lease; a failure → fail ``node_setup_failed``
   (stage ``build_ports``).
6. Run the handler beside the heartbeat driver. DMS cancel or a lost lease sets the handler's
   cancel flag, revokes the domain token and, after ``cancel_grace_s``, cancels the handler
   task; no receipt is sent.
7. Handler returned → one final heartbeat flushes progress/events and re-checks cancellation,
   then ``complete`` with the recorded artifacts (sorted by logical path). Handler raised →
   final heartbeat, then ``fail`` with ``runner failed: <message>`` and ``{job, artifacts}``.

:meth:`TaskEngine.run_forever` waits for DDS registration, polls again at once after a
processed lease and backs off uniformly in [``poll_backoff_ms_min``, ``poll_backoff_ms_max``]
after no work, a rejected lease or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import httpx

from domain_client.config import DEFAULT_HEARTBEAT_RATIOS, DEFAULT_POLL_BACKOFF_MS
from domain_client.dms import DmsClient
from domain_client.domain import DOMAIN_REQUEST_TIMEOUT_S, DomainClient
from domain_client.errors import DomainClientError, LeaseLost, TaskCancelled
from domain_client.heartbeat import HeartbeatDriver, ProgressReporter
from domain_client.lease import LeaseSession, lease_problem
from domain_client.models import FailBody, JobMeta, Lease, TaskSpec
from domain_client.receipts import (
    complete_body,
    job_meta,
    runner_failure_body,
    setup_failure_body,
    unknown_capability_body,
)
from domain_client.registration import Registrar
from domain_client.retry import RetryPolicy
from domain_client.storage import DownloadMode, TaskStorage
from domain_client.throughput import DownloadRateLimit
from domain_client.timestamps import utc_now

__all__ = [
    "CycleOutcome",
    "EngineConfig",
    "Handler",
    "ProgressReporter",
    "RunnerError",
    "TaskContext",
    "TaskEngine",
    "poll_backoff_s",
]

logger = logging.getLogger(__name__)

CycleOutcome = Literal["no_work", "rejected", "completed", "failed", "cancelled", "lost", "error"]
PROCESSED: frozenset[CycleOutcome] = frozenset({"completed", "failed", "cancelled", "lost"})
"""Outcomes after which the engine polls again at once."""


class RunnerError(Exception):
    """A handler failure whose message becomes the fail reason ``runner failed: <message>``.

    Any other exception is reported the same way; this class exists so runners can say so.
    """


class TaskContext:
    """What a handler gets: the live lease, storage, a progress reporter and a cancel flag."""

    def __init__(
        self, session: LeaseSession, storage: TaskStorage, reporter: ProgressReporter
    ) -> None:
        self._session = session
        self.storage = storage
        self.reporter = reporter
        self.cancelled: asyncio.Event = session.cancelled

    @property
    def lease(self) -> Lease:
        """The current lease (token, URL and expiry as of the latest heartbeat)."""
        return self._session.lease

    @property
    def task(self) -> TaskSpec:
        return self._session.lease.task

    @property
    def job(self) -> JobMeta:
        return job_meta(self._session.lease)

    @property
    def lease_lost(self) -> bool:
        """True once the lease is gone (failed heartbeat, expiry): unlike a DMS cancel, the
        task may come back to this node, so its work is worth keeping."""
        return self._session.state == "lost"

    def raise_if_cancelled(self, stage: str) -> None:
        """Raise ``TaskCancelled(stage)`` once the task was cancelled or its lease lost."""
        if self.cancelled.is_set():
            raise TaskCancelled(stage)


Handler = Callable[[TaskContext], Awaitable[None]]


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings (units in the names; defaults are the reference node's).

    Attributes:
        client_id: ``posemesh-client-id`` of every domain request.
        capabilities: capabilities this node registered; empty = the handlers' keys.
        poll_backoff_ms_min, poll_backoff_ms_max: idle poll jitter range (swapped if reversed).
        heartbeat_min_ratio, heartbeat_max_ratio: [PM] heartbeat due fraction of the lease TTL.
        heartbeat_max_interval_s: [SDK] bound between two heartbeats.
        domain_request_timeout_s: per-operation timeout of domain requests.
        clock_skew_s: expiries this far in the past still count as valid (DMS/node clocks).
        cancel_grace_s: how long a cancelled handler may take to return before it is cancelled.
        registration_poll_s: re-check interval while waiting for DDS registration.
        download_mode, strict_ids: passed to :class:`TaskStorage`.
        domain_retry: backoff of idempotent domain requests (None: the default policy).
        download_rate: the floor under download speed (None: none).
    """

    client_id: str
    capabilities: tuple[str, ...] = ()
    poll_backoff_ms_min: int = DEFAULT_POLL_BACKOFF_MS[0]
    poll_backoff_ms_max: int = DEFAULT_POLL_BACKOFF_MS[1]
    heartbeat_min_ratio: float = DEFAULT_HEARTBEAT_RATIOS[0]
    heartbeat_max_ratio: float = DEFAULT_HEARTBEAT_RATIOS[1]
    heartbeat_max_interval_s: float = 30.0
    domain_request_timeout_s: float = DOMAIN_REQUEST_TIMEOUT_S
    clock_skew_s: float = 5.0
    cancel_grace_s: float = 15.0
    registration_poll_s: float = 1.0
    download_mode: DownloadMode = "list_raw"
    strict_ids: bool = False
    domain_retry: RetryPolicy | None = None
    download_rate: DownloadRateLimit | None = None


def poll_backoff_s(min_ms: int, max_ms: int, rng: random.Random) -> float:
    """A uniform idle delay in [min, max] ms (bounds swapped when reversed), in seconds."""
    low, high = sorted((max(0, min_ms), max(0, max_ms)))
    return rng.uniform(low, high) / 1000


class TaskEngine:
    """Leases tasks from DMS and runs them with handlers keyed by capability.

    Args:
        dms: the DMS client (its token source does the 401 refresh-and-replay).
        http: the shared client for domain requests.
        handlers: capability → handler.
        config: engine settings.
        registrar: when given, polling waits until DDS registration is done.
    """

    def __init__(
        self,
        dms: DmsClient,
        http: httpx.AsyncClient,
        handlers: Mapping[str, Handler],
        config: EngineConfig,
        *,
        registrar: Registrar | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._dms = dms
        self._http = http
        self._handlers = dict(handlers)
        self._config = config
        self._capabilities = frozenset(config.capabilities or self._handlers)
        self._registrar = registrar
        self._rng = rng or random.Random()
        self._session: LeaseSession | None = None
        self.outcomes: Counter[CycleOutcome] = Counter()
        """How many cycles ended in each outcome."""

    @property
    def current_task_id(self) -> str | None:
        return self._session.task_id if self._session is not None else None

    def cancel_current(self, reason: str = "cancelled by the node") -> bool:
        """Cancel the running task locally (no receipt). False if none is running."""
        if self._session is None:
            return False
        self._session.cancel(reason)
        return True

    # --- the loop --------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event, slot: asyncio.Lock | None = None) -> None:
        """Cycle until ``stop`` is set; a task running at that moment is cancelled locally.

        Args:
            stop: ends the loop.
            slot: held for the whole of each cycle when given (a node that also runs work from
                elsewhere on the same worker leases nothing while that work holds it).
        """
        while not stop.is_set():
            if self._registrar is not None and not await self._registrar.wait_registered(
                stop, self._config.registration_poll_s
            ):
                break
            if slot is None:
                outcome = await self._guarded_cycle(stop)
            else:
                if not await acquire_unless_stopped(slot, stop):
                    break
                try:
                    outcome = await self._guarded_cycle(stop)
                finally:
                    slot.release()
            await asyncio.sleep(0)  # let other tasks run even when every call answered at once
            if outcome not in PROCESSED:
                delay = poll_backoff_s(
                    self._config.poll_backoff_ms_min, self._config.poll_backoff_ms_max, self._rng
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _guarded_cycle(self, stop: asyncio.Event) -> CycleOutcome:
        try:
            return await self.run_once(stop)
        except Exception:
            logger.exception("task engine cycle failed unexpectedly")
            self.outcomes["error"] += 1
            return "error"

    async def run_once(self, stop: asyncio.Event | None = None) -> CycleOutcome:
        """One poll and, with a lease, one task run (see the module docstring)."""
        try:
            lease = await self._dms.lease()
        except DomainClientError as exc:
            logger.warning("lease poll failed: %s", exc)
            return self._count("error")
        if lease is None:
            return self._count("no_work")
        return self._count(await self._process(lease, stop))

    def _count(self, outcome: CycleOutcome) -> CycleOutcome:
        self.outcomes[outcome] += 1
        return outcome

    # --- one lease -------------------------------------------------------------------------

    async def _process(self, lease: Lease, stop: asyncio.Event | None) -> CycleOutcome:
        skew = timedelta(seconds=self._config.clock_skew_s)
        problem = lease_problem(lease, utc_now(), skew)
        if problem is not None:
            logger.warning("dropping lease for task %s: %s", lease.task.id, problem)
            return "rejected"
        handler = self._handler_for(lease.task.capability)
        if handler is None:
            sent = await self._send_fail(lease.task.id, unknown_capability_body(job_meta(lease)))
            return "failed" if sent else "error"
        session = LeaseSession(lease, skew=skew)
        if not await self._initial_heartbeat(session):
            return session.state if session.state != "running" else "lost"
        try:
            storage = self._build_storage(session)
        except (DomainClientError, ValueError) as exc:
            sent = await self._send_fail(
                session.task_id, setup_failure_body("build_ports", str(exc))
            )
            return "failed" if sent else "error"
        self._session = session
        try:
            return await self._run_handler(session, storage, handler, stop)
        finally:
            self._session = None

    def _handler_for(self, capability: str) -> Handler | None:
        if capability not in self._capabilities:
            return None
        return self._handlers.get(capability)

    async def _initial_heartbeat(self, session: LeaseSession) -> bool:
        """§1.7 step 3. False (report nothing, §5 #9) when it fails or cancels the task."""
        try:
            update = await self._dms.heartbeat(session.task_id, {}, [])
        except LeaseLost as exc:
            session.lose(str(exc))
            return False
        return session.apply(update).kind == "running"

    def _build_storage(self, session: LeaseSession) -> TaskStorage:
        lease = session.lease
        url = httpx.URL(lease.domain_server_url or "")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"lease domain_server_url is not an http(s) URL: {url}")
        domain = DomainClient(
            self._http,
            str(url),
            lease.domain_id or "",
            session.token,
            self._config.client_id,
            request_timeout_s=self._config.domain_request_timeout_s,
            retry=self._config.domain_retry,
            download_rate=self._config.download_rate,
        )
        session.on_server_url = lambda new_url: setattr(domain, "base_url", new_url)
        return TaskStorage(
            domain,
            lease.task.id,
            lease.task.outputs_prefix,
            download_mode=self._config.download_mode,
            strict_ids=self._config.strict_ids,
        )

    async def _run_handler(
        self,
        session: LeaseSession,
        storage: TaskStorage,
        handler: Handler,
        stop: asyncio.Event | None,
    ) -> CycleOutcome:
        driver = HeartbeatDriver(
            self._dms,
            session,
            min_ratio=self._config.heartbeat_min_ratio,
            max_ratio=self._config.heartbeat_max_ratio,
            max_interval_s=self._config.heartbeat_max_interval_s,
            rng=self._rng,
        )
        context = TaskContext(session, storage, driver)
        session.token.refresh_hook = driver.request_heartbeat
        driver_task = asyncio.create_task(driver.run(), name=f"heartbeat-{session.task_id}")
        handler_task = asyncio.create_task(
            _invoke(handler, context), name=f"handler-{session.task_id}"
        )
        try:
            await self._wait_handler_or_end(session, handler_task, driver_task, stop)
            if not handler_task.done():
                await self._stop_handler(handler_task)
        finally:
            driver.stop()
            await asyncio.wait([driver_task])
            if not handler_task.done():
                handler_task.cancel()
                await asyncio.wait([handler_task])
        if not driver_task.cancelled() and driver_task.exception() is not None:
            logger.error("heartbeat driver crashed", exc_info=driver_task.exception())
        return await self._report(session, storage, driver, handler_task)

    async def _wait_handler_or_end(
        self,
        session: LeaseSession,
        handler_task: asyncio.Task[None],
        driver_task: asyncio.Task[Any],
        stop: asyncio.Event | None,
    ) -> None:
        """Until the handler returns, the session is cancelled/lost, or the node stops."""
        waiters = [asyncio.ensure_future(session.cancelled.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(
                [handler_task, driver_task, *waiters], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if handler_task.done():
            return
        if stop is not None and stop.is_set():
            session.cancel("the node is shutting down")
        elif driver_task.done():
            session.lose("the heartbeat driver stopped")

    async def _stop_handler(self, handler_task: asyncio.Task[None]) -> None:
        """Give a cancelled handler ``cancel_grace_s`` to return, then cancel it."""
        await asyncio.wait([handler_task], timeout=self._config.cancel_grace_s)
        if not handler_task.done():
            logger.warning(
                "handler did not stop within %.1f s; cancelling it", self._config.cancel_grace_s
            )
            handler_task.cancel()
            await asyncio.wait([handler_task])

    async def _report(
        self,
        session: LeaseSession,
        storage: TaskStorage,
        driver: HeartbeatDriver,
        handler_task: asyncio.Task[None],
    ) -> CycleOutcome:
        """Send the receipt of a finished handler, unless the task was cancelled or lost."""
        error = None if handler_task.cancelled() else handler_task.exception()
        if session.state != "running" or handler_task.cancelled():
            return session.state if session.state != "running" else "cancelled"
        if isinstance(error, LeaseLost):
            session.lose(str(error))
            return "lost"
        final = await driver.beat()
        if final.kind != "running":
            return final.kind
        job = job_meta(session.lease)
        if error is None:
            return await self._send_complete(session.task_id, job, storage)
        logger.warning("task %s handler failed: %s", session.task_id, error)
        sent = await self._send_fail(
            session.task_id, runner_failure_body(error, job, storage.artifacts())
        )
        return "failed" if sent else "error"

    async def _send_complete(
        self, task_id: str, job: JobMeta, storage: TaskStorage
    ) -> CycleOutcome:
        try:
            await self._dms.complete(task_id, complete_body(job, storage.artifacts()))
        except DomainClientError as exc:
            logger.error("DMS complete for task %s failed: %s", task_id, exc)
            return "error"
        logger.info("task %s completed", task_id)
        return "completed"

    async def _send_fail(self, task_id: str, body: FailBody) -> bool:
        try:
            await self._dms.fail(task_id, body)
        except DomainClientError as exc:
            logger.error("DMS fail for task %s failed: %s", task_id, exc)
            return False
        logger.info("task %s failed: %s", task_id, body.reason)
        return True


async def acquire_unless_stopped(lock: asyncio.Lock, stop: asyncio.Event) -> bool:
    """Acquire ``lock``, or give up once ``stop`` is set; True when the lock is now held."""
    if stop.is_set():
        return False
    acquiring = asyncio.ensure_future(lock.acquire())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([acquiring, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring
    if acquiring.cancelled():
        return False
    if stop.is_set():
        lock.release()  # acquired in the same instant as the stop: give it back
        return False
    return True


async def _invoke(handler: Handler, context: TaskContext) -> None:
    await handler(context)
