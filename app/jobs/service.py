"""The job service: every job the node runs, recorded; the push door's queue and worker.

Push jobs (``POST /splatter/colmap/v1``) are queued in memory and run one at a time by a worker
task that holds the supervisor's slot for the whole job. Lease jobs come from the lease engine,
which calls :meth:`JobService.run_leased` as its handler while holding the same slot. Both run
:func:`app.runner.run_splatter_job` and end in exactly one of ``succeeded``, ``failed`` (reason
``runner failed: <message>``, at most 4096 bytes) or ``cancelled``.

A push job's domain token lives only in memory: the store never sees it, so after a restart an
unfinished push job is failed with ``node restarted`` (:meth:`JobStore.recover_interrupted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import httpx

from app.jobs.envelope import PushLease
from app.jobs.reporting import JobReporter, ProgressForwarder
from app.logs import log_context
from app.metrics import NodeMetrics
from app.ports import TaskContextView
from app.records import JobEvent, JobRecord, JobState, NewJob
from app.runner import JobCancelledError, run_splatter_job
from app.settings import Settings
from app.store import JobStore
from app.viewer.outputs import JobOutputs
from app.worker.supervisor import WorkerSupervisor
from domain_client.delivery import ProgressReporter
from domain_client.models import ArtifactRecord, Lease
from domain_client.receipts import runner_failure_reason
from domain_client.storage import TaskStorage

__all__ = [
    "DuplicateTaskError",
    "IntakeUnavailableError",
    "JobFinishedError",
    "JobService",
    "PushContextFactory",
]

log = logging.getLogger(__name__)


class PushContextFactory(Protocol):
    """Builds the task context of a push job (domain client + task storage for its lease)."""

    def __call__(
        self, lease: PushLease, reporter: ProgressReporter, cancelled: asyncio.Event
    ) -> TaskContextView: ...


class IntakeUnavailableError(RuntimeError):
    """The push door cannot take jobs now (the node is shutting down)."""


class DuplicateTaskError(RuntimeError):
    """A job for this DMS task is already queued or running."""

    def __init__(self, task_id: str, job: JobRecord) -> None:
        super().__init__(f"task {task_id} is already {job.state} as job {job.id}")
        self.job = job


class JobFinishedError(RuntimeError):
    """The job has already ended; it cannot be cancelled."""


@dataclass(frozen=True)
class _RecordedContext:
    """A task context whose reporter also records into the store."""

    lease: Lease
    storage: TaskStorage
    reporter: ProgressReporter
    cancelled: asyncio.Event


@dataclass(frozen=True)
class _PendingPush:
    lease: PushLease
    progress_url: str | None


class JobService:
    """Accepts, runs, cancels and reports jobs."""

    def __init__(
        self,
        store: JobStore,
        supervisor: WorkerSupervisor,
        settings: Settings,
        metrics: NodeMetrics,
        *,
        context_factory: PushContextFactory,
        http: httpx.AsyncClient,
        outputs: JobOutputs | None = None,
    ) -> None:
        self.store = store
        self._supervisor = supervisor
        self._settings = settings
        self._metrics = metrics
        self._context_factory = context_factory
        self._http = http
        self._outputs = outputs
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: dict[str, _PendingPush] = {}
        self._cancels: dict[str, Callable[[], None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._accepting = False

    # --- lifecycle ---

    def start(self) -> None:
        """Starts the push worker."""
        self._accepting = True
        self._worker = asyncio.create_task(self._work(), name="push-job-worker")

    @property
    def healthy(self) -> bool:
        """True while the push worker is alive."""
        return self._worker is not None and not self._worker.done()

    async def stop(self) -> None:
        """Refuses new jobs; lets a running job drain, then cancels it; records every state."""
        self._accepting = False
        drain = self._settings.shutdown_drain_secs
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain)
        for cancel in list(self._cancels.values()):
            cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._settings.cancel_grace_secs + 10.0)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for job_key in list(self._pending):
            self._finish(job_key, "cancelled", error="node shutting down")
        self._pending.clear()

    # --- the push door ---

    def submit(self, lease: PushLease, progress_url: str | None = None) -> JobRecord:
        """Queues a push job; returns its record (state ``queued``).

        Raises:
            IntakeUnavailableError: the node is shutting down.
            DuplicateTaskError: a job for the same task id is queued or running.
        """
        if not self._accepting:
            raise IntakeUnavailableError("the node is shutting down")
        task_id = lease.task.id
        active = self.store.active_for_task(task_id)
        if active is not None:
            raise DuplicateTaskError(task_id, active)
        record = self.store.create(
            NewJob(
                source="push",
                task_id=task_id,
                capability=lease.task.capability,
                job_id=lease.task.job_id,
                domain_id=lease.domain_id,
                progress_url=progress_url,
            )
        )
        self._pending[record.id] = _PendingPush(lease, progress_url)
        self._queue.put_nowait(record.id)
        log.info("push job queued", extra={"job": record.id, "task_id": task_id})
        return record

    def cancel(self, job_key: str) -> JobRecord:
        """Cancels a queued job at once, or asks a running one to stop (SIGTERM → SIGKILL).

        Raises:
            JobNotFoundError: no such job.
            JobFinishedError: the job has already ended.
        """
        record = self.store.get(job_key)
        if not record.active:
            raise JobFinishedError(f"job {job_key} has already {record.state}")
        if job_key in self._pending:
            self._pending.pop(job_key)
            return self._finish(job_key, "cancelled", error="cancelled before it started")
        cancel = self._cancels.get(job_key)
        if cancel is not None:
            cancel()
            self.store.add_event(
                job_key, {"level": "warn", "stage": "cancelled", "message": "cancel requested"}
            )
        return self.store.get(job_key)

    # --- the lease door ---

    async def run_leased(
        self, ctx: TaskContextView, cancel: Callable[[], None] | None = None
    ) -> None:
        """The lease engine's handler: records the job, runs it, re-raises its failure.

        The caller holds the worker slot. ``DELETE /jobs/{id}`` and shutdown call ``cancel``
        (the engine's own cancel, so that no receipt is sent); by default they set
        ``ctx.cancelled``.
        """
        task = ctx.lease.task
        record = self.store.create(
            NewJob(
                source="lease",
                task_id=task.id,
                capability=task.capability,
                job_id=task.job_id,
                domain_id=ctx.lease.domain_id,
            )
        )
        reporter = JobReporter(self.store, record.id, [ctx.reporter])
        recorded = _RecordedContext(ctx.lease, ctx.storage, reporter, ctx.cancelled)
        await self._execute(record.id, recorded, reraise=True, cancel=cancel)

    # --- reading ---

    def get(self, job_key: str) -> JobRecord:
        return self.store.get(job_key)

    def events(self, job_key: str, after: int = 0) -> list[JobEvent]:
        self.store.get(job_key)  # 404 for unknown jobs
        return self.store.events(job_key, after=after)

    def list_jobs(
        self, state: JobState | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        return self.store.list_jobs(state, limit, offset), self.store.count(state)

    # --- internals ---

    async def _work(self) -> None:
        while True:
            job_key = await self._queue.get()
            if not self._accepting:
                continue  # shutting down: stop() records what is still pending
            pending = self._pending.pop(job_key, None)
            if pending is None:
                continue  # cancelled while queued
            async with self._supervisor.slot:
                await self._run_push(job_key, pending)

    async def _run_push(self, job_key: str, pending: _PendingPush) -> None:
        cancel = asyncio.Event()
        forwarder = self._forwarder(pending.progress_url)
        reporter = JobReporter(self.store, job_key, [] if forwarder is None else [forwarder])
        try:
            ctx = self._context_factory(pending.lease, reporter, cancel)
        except Exception as exc:
            log.exception("push job setup failed", extra={"job": job_key})
            self._finish(job_key, "failed", error=f"node_setup_failed: {exc}")
        else:
            await self._execute(job_key, ctx, reraise=False, cancel=cancel.set)
        finally:
            if forwarder is not None:
                await forwarder.close()

    async def _execute(
        self,
        job_key: str,
        ctx: TaskContextView,
        *,
        reraise: bool,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self._cancels[job_key] = cancel or ctx.cancelled.set
        self._idle.clear()
        self.store.mark_running(job_key)
        try:
            with log_context(job=job_key, task_id=ctx.lease.task.id):
                await self._handler(ctx, job_key)
        except asyncio.CancelledError:
            # Our own task was cancelled (shutdown past its bounds): the runner has already
            # killed its child; record the end before unwinding.
            artifacts = ctx.storage.artifacts()
            self._finish(job_key, "cancelled", error="node shutting down", artifacts=artifacts)
            raise
        except Exception as exc:
            self._record_failure(job_key, ctx, exc)
            if reraise:
                raise
        else:
            self._finish(job_key, "succeeded", artifacts=ctx.storage.artifacts())
        finally:
            self._cancels.pop(job_key, None)
            if not self._cancels:
                self._idle.set()

    async def _handler(self, ctx: TaskContextView, job_key: str) -> None:
        outputs = self._outputs
        await run_splatter_job(
            ctx,
            self._settings,
            supervisor=self._supervisor,
            metrics=self._metrics,
            keep_outputs=None if outputs is None else partial(outputs.keep, job_key),
        )

    def _record_failure(self, job_key: str, ctx: TaskContextView, exc: Exception) -> None:
        artifacts = ctx.storage.artifacts()
        if isinstance(exc, JobCancelledError) or ctx.cancelled.is_set():
            self._finish(job_key, "cancelled", error=str(exc), artifacts=artifacts)
        else:
            self._finish(job_key, "failed", error=runner_failure_reason(exc), artifacts=artifacts)

    def _finish(
        self,
        job_key: str,
        state: JobState,
        error: str | None = None,
        artifacts: Sequence[ArtifactRecord] | None = None,
    ) -> JobRecord:
        record = self.store.finish(job_key, state, error=error, artifacts=artifacts)
        self._metrics.job_finished(state)
        log.info("job finished", extra={"job": job_key, "state": state, "error": error})
        return record

    def _forwarder(self, url: str | None) -> ProgressForwarder | None:
        if url is None:
            return None
        forwarder = ProgressForwarder(self._http, url)
        forwarder.start()
        return forwarder
