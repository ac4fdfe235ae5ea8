"""The job service: every job the node runs, recorded; the push door's queue and worker.

Push jobs (``POST /splatter/colmap/v1``) are queued in memory and run one at a time by a worker
task that holds the supervisor's slot for the whole job. The store's state is the single truth
about who owns a queued job: the worker starts it only through an atomic ``queued → running``
(:meth:`JobStore.claim_queued`) after it holds the slot, and ``DELETE`` cancels it only through
an atomic ``queued → cancelled``, so a cancel that lands while the job waits for the slot wins.
The watch door queues *local* jobs (:meth:`JobService.enqueue_local`: no lease, no domain)
into the same queue, slot and store. At most ``SPLATTER_MAX_QUEUED`` push jobs wait; finished
jobs are deleted after ``JOB_RETENTION_DAYS``. Lease jobs come from the lease engine,
which calls :meth:`JobService.run_leased` as its handler while holding the same slot. Both run
:func:`app.runner.run_splatter_job` and end in exactly one of ``succeeded``, ``failed`` (reason
``runner failed: <message>``, at most 4096 bytes) or ``cancelled`` (a push job the node's stop
interrupts goes back to ``queued`` instead, below; one whose child a SIGTERM the node did not send
stopped is queued again at once, at most ``SIGTERM_REQUEUES`` times).

A push job's domain token (a :class:`~app.jobs.push_token.PushToken`, replaceable with
``PUT /jobs/{id}/token``) lives only in memory, in its :class:`~app.jobs.push_job.PushJob`: the
store keeps the envelope without it. A push job a killed node left queued or running is queued
again at the next start (:meth:`JobService.resume_interrupted`), and one the node's own stop
interrupts is left ``queued`` (:meth:`JobService.stop`); how both work is
:mod:`app.jobs.push_restart`'s. What the service refuses is in :mod:`app.jobs.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import httpx

from app.jobs.envelope import PushLease, TokenGrant
from app.jobs.errors import (
    DuplicateTaskError,
    IntakeUnavailableError,
    JobFinishedError,
    QueueFullError,
    TokenNotAcceptedError,
)
from app.jobs.push_job import PushJob, stored_envelope
from app.jobs.push_restart import SHUTDOWN, PushRestarts, remove_kept_folder
from app.jobs.push_token import PushToken
from app.jobs.reporting import JobReporter, TokenWaitReporter, relayed_reporter
from app.logs import log_context
from app.metrics import NodeMetrics
from app.ports import JobContextView, TaskContextView
from app.records import JobEvent, JobRecord, JobState, NewJob
from app.runner import JobCancelledError, run_splatter_job
from app.runner.errors import FOREIGN_SIGTERM, PipelineInterruptedError
from app.settings import Settings
from app.store import JobStore
from app.targets import check_target
from app.viewer.outputs import JobOutputs
from app.worker.supervisor import WorkerSupervisor
from domain_client.delivery import ProgressReporter
from domain_client.models import ArtifactRecord, Lease
from domain_client.receipts import runner_failure_reason, truncate_utf8
from domain_client.storage import TaskStorage

__all__ = ["JobService", "LocalJobContext", "LocalWork", "PushContextFactory"]

log = logging.getLogger(__name__)

RETENTION_SWEEP_SECS = 3600.0
"""How often finished jobs past ``JOB_RETENTION_DAYS`` are deleted (also once at start)."""
QUEUE_FULL_RETRY_AFTER_SECS = 60
SIGTERM_REQUEUES = 2
"""How often a push job whose child a SIGTERM the node did not send stopped is queued again
(then it is recorded ``cancelled`` as a lease job is, its folder kept)."""


class PushContextFactory(Protocol):
    """Builds the task context of a push job (domain client + task storage for its lease)."""

    def __call__(
        self,
        lease: PushLease,
        reporter: ProgressReporter,
        cancelled: asyncio.Event,
        token: PushToken | None = None,
    ) -> TaskContextView: ...


@dataclass(frozen=True)
class _RecordedContext:
    """A task context whose reporter also records into the store."""

    lease: Lease
    storage: TaskStorage
    reporter: ProgressReporter
    cancelled: asyncio.Event


@dataclass(frozen=True)
class LocalJobContext:
    """What a local job's work gets (``JobContextView``): the job's reporter and cancel flag."""

    reporter: ProgressReporter
    cancelled: asyncio.Event


class LocalWork(Protocol):
    """A job without a lease (the watch door's): what to run, and whom to tell at the end."""

    async def run(self, ctx: JobContextView) -> None:
        """Runs the job; returns on success, raises on failure (``JobCancelledError`` when
        ``ctx.cancelled`` stopped it)."""
        ...

    def finished(self, record: JobRecord) -> None:
        """Called once with the job's final record (also when cancelled while queued)."""
        ...


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
        self._pushes: dict[str, PushJob] = {}
        self._locals: dict[str, LocalWork] = {}
        self._cancels: dict[str, Callable[[], None]] = {}
        self._user_cancels: set[str] = set()
        """Running jobs a ``DELETE`` asked to stop (they end ``cancelled`` even at a shutdown)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._accepting = False
        self._restarts = PushRestarts(
            store,
            settings,
            metrics,
            http,
            pushes=self._pushes,
            enqueue=self._queue.put_nowait,
            check_targets=self._check_targets,
        )

    # --- lifecycle ---

    def start(self) -> None:
        """Starts the push worker and the retention sweep."""
        self._accepting = True
        self._worker = asyncio.create_task(self._work(), name="push-job-worker")
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-retention")

    @property
    def healthy(self) -> bool:
        """True while the push worker is alive."""
        return self._worker is not None and not self._worker.done()

    async def stop(self) -> None:
        """Refuses new jobs; lets a running job drain, then stops it; records every state.

        Push jobs are not cancelled: one the stop interrupted (it keeps its folder), one still
        queued and one waiting for its token after a restart all stay ``queued``, and the next
        start queues them again (:meth:`resume_interrupted`); each one's ``progress_url`` is
        told so. Local (watch) jobs still queued are cancelled (their input stays in the inbox).
        """
        self._accepting = False
        await self._stop_running()
        # queued or waiting for a token (a running one left past the bounds is recorded below,
        # when its task is cancelled)
        waiting = {
            job_key: push
            for job_key, push in self._pushes.items()
            if self.store.get(job_key).state == "queued"
        }
        for task in (self._worker, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._restarts.cancel_token_waits()
        await self._restarts.keep_queued(waiting)
        for job_key in [*self._locals]:
            self._cancel_queued(job_key, SHUTDOWN)
        self._pushes.clear()
        self._locals.clear()

    async def _stop_running(self) -> None:
        """Waits up to ``SHUTDOWN_DRAIN_SECS`` for the running job to end, then cancels it and
        waits up to ``CANCEL_GRACE_SECS`` + 10 s for it to stop."""
        drain = self._settings.shutdown_drain_secs
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain)
        for cancel in list(self._cancels.values()):
            cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._settings.cancel_grace_secs + 10.0)

    def sweep_finished(self, now: datetime | None = None) -> int:
        """Deletes jobs finished more than ``JOB_RETENTION_DAYS`` ago; returns how many."""
        days = self._settings.job_retention_days
        if days <= 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        text = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        deleted = self.store.delete_finished_before(text)
        if deleted:
            log.info("deleted finished jobs past retention", extra={"count": deleted})
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            try:
                self.sweep_finished()
            except Exception:
                log.exception("job retention sweep failed")
            await asyncio.sleep(RETENTION_SWEEP_SECS)

    # --- the push door ---

    async def accept(self, lease: PushLease, progress_url: str | None = None) -> JobRecord:
        """Checks where the job would send its token (:mod:`app.targets`), then queues it.

        Raises:
            ForbiddenTargetError: a URL names a non-public address that is not allowed.
            and whatever :meth:`submit` raises.
        """
        await self._check_targets(lease, progress_url)
        return self.submit(lease, progress_url)

    def submit(self, lease: PushLease, progress_url: str | None = None) -> JobRecord:
        """Queues a push job; returns its record (state ``queued``).

        Raises:
            IntakeUnavailableError: the node is shutting down.
            DuplicateTaskError: a job for the same task id is queued or running.
            QueueFullError: ``SPLATTER_MAX_QUEUED`` push jobs are already queued.
        """
        if not self._accepting:
            raise IntakeUnavailableError("the node is shutting down")
        task_id = lease.task.id
        active = self.store.active_for_task(task_id)
        if active is not None:
            raise DuplicateTaskError(task_id, active, self._restarts.waits_for_token(active.id))
        queued = sum(1 for key in self._pushes if self.store.get(key).state == "queued")
        if queued >= self._settings.splatter_max_queued:
            raise QueueFullError(queued, QUEUE_FULL_RETRY_AFTER_SECS)
        record = self.store.create(
            NewJob(
                source="push",
                task_id=task_id,
                capability=lease.task.capability,
                job_id=lease.task.job_id,
                domain_id=lease.domain_id,
                progress_url=progress_url,
            ),
            envelope=stored_envelope(lease),
        )
        token = PushToken(lease.access_token, lease.access_token_expires_at)
        self._pushes[record.id] = PushJob(lease, progress_url, token)
        self._queue.put_nowait(record.id)
        log.info("push job queued", extra={"job": record.id, "task_id": task_id})
        return record

    def enqueue_local(self, job: NewJob, work: LocalWork) -> JobRecord:
        """Queues a local job (the watch door's) behind the others; returns its record.

        Raises:
            IntakeUnavailableError: the node is shutting down.
        """
        if not self._accepting:
            raise IntakeUnavailableError("the node is shutting down")
        record = self.store.create(job)
        self._locals[record.id] = work
        self._queue.put_nowait(record.id)
        log.info("local job queued", extra={"job": record.id, "source": job.source})
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
        push = self._pushes.get(job_key)
        # restored after a restart, or queued again after a foreign SIGTERM: a kept folder
        kept = push is not None and (push.restored is not None or push.sigterm_requeues > 0)
        reason = "cancelled before it started"
        if self._restarts.waits_for_token(job_key):
            reason = "cancelled while waiting for a domain token"
        if self._cancel_queued(job_key, reason):
            if kept:  # a cancel ends the job for good: its kept folder goes
                remove_kept_folder(self._settings, record.task_id)
            return self.store.get(job_key)
        cancel = self._cancels.get(job_key)
        if cancel is not None:
            self._user_cancels.add(job_key)
            cancel()
            self.store.add_event(
                job_key, {"level": "warn", "stage": "cancelled", "message": "cancel requested"}
            )
        return self.store.get(job_key)

    def replace_token(self, job_key: str, grant: TokenGrant) -> JobRecord:
        """Hands a queued or running push job a fresh domain token (wakes a 401 wait).

        Raises:
            JobNotFoundError: no such job.
            JobFinishedError: the job has already ended.
            TokenNotAcceptedError: a lease job (DMS heartbeats rotate its token).
        """
        record = self.store.get(job_key)
        push = self._pushes.get(job_key)
        if not record.active:
            raise JobFinishedError(f"job {job_key} has already {record.state}")
        if push is None:
            raise TokenNotAcceptedError(
                f"job {job_key} is a {record.source} job; only push jobs take a pushed token"
            )
        push.token.replace(grant.access_token, grant.access_token_expires_at)
        self.store.add_event(
            job_key, {"level": "info", "stage": "token", "message": "domain token replaced"}
        )
        return self.store.get(job_key)

    # --- push jobs a restart interrupted ---

    async def resume_interrupted(self) -> list[str]:
        """At start-up, after :meth:`start`: queues again the push jobs a previous process left
        unfinished; returns their ids. Each waits up to ``TOKEN_WAIT_SECS`` for
        ``PUT /jobs/{id}/token`` first (:meth:`PushRestarts.resume_interrupted`)."""
        return await self._restarts.resume_interrupted()

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
        self.store.mark_running(record.id)
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
                continue  # shutting down: stop() records what is still queued
            push, local = self._pushes.get(job_key), self._locals.get(job_key)
            if push is None and local is None:
                continue  # cancelled while queued
            async with self._supervisor.slot:
                if not self._accepting:
                    continue  # the stop began while it waited for the slot: it stays queued
                try:
                    if not self.store.claim_queued(job_key):
                        continue  # DELETE cancelled it while it waited for the slot
                    if push is not None:
                        await self._run_push(job_key, push)
                    elif local is not None:
                        await self._run_local(job_key, local)
                finally:
                    if self._pushes.get(job_key) is push:  # not queued again (a new PushJob)
                        self._pushes.pop(job_key, None)
                    self._locals.pop(job_key, None)

    def _cancel_queued(self, job_key: str, reason: str) -> bool:
        if not self.store.cancel_queued(job_key, reason):
            return False
        push = self._pushes.pop(job_key, None)
        if push is not None and push.restored is not None:
            push.restored.set()  # ends its wait for a token
        self._metrics.job_finished("cancelled")
        log.info("job finished", extra={"job": job_key, "state": "cancelled", "error": reason})
        local = self._locals.pop(job_key, None)
        if local is not None:
            _tell_finished(local, self.store.get(job_key))
        return True

    async def _run_local(self, job_key: str, work: LocalWork) -> None:
        cancel = asyncio.Event()
        self._cancels[job_key] = cancel.set
        self._idle.clear()
        ctx = LocalJobContext(JobReporter(self.store, job_key), cancel)
        try:
            with log_context(job=job_key):
                await work.run(ctx)
        except asyncio.CancelledError:
            self._finish(job_key, "cancelled", error=SHUTDOWN)
            raise
        except Exception as exc:
            if isinstance(exc, JobCancelledError) or cancel.is_set():
                self._finish(job_key, "cancelled", error=str(exc))
            else:
                self._finish(job_key, "failed", error=runner_failure_reason(exc))
        else:
            self._finish(job_key, "succeeded")
        finally:
            self._forget_cancel(job_key)
            _tell_finished(work, self.store.get(job_key))

    async def _run_push(self, job_key: str, push: PushJob) -> None:
        cancel = asyncio.Event()
        self._cancels[job_key] = cancel.set
        self._idle.clear()
        try:
            # the relay closes before the job counts as ended: the stop waits for it
            async with relayed_reporter(
                self.store, self._http, job_key, push.progress_url
            ) as reporter:
                push.token.listener = TokenWaitReporter(self.store, job_key, reporter)
                await self._start_push(job_key, push, reporter, cancel)
        finally:
            self._forget_cancel(job_key)

    async def _start_push(
        self, job_key: str, push: PushJob, reporter: ProgressReporter, cancel: asyncio.Event
    ) -> None:
        """Checks the job's URLs again (DNS may have moved), builds its context and runs it."""
        try:
            await self._check_targets(push.lease, push.progress_url)
            ctx = self._context_factory(push.lease, reporter, cancel, push.token)
        except Exception as exc:
            log.exception("push job setup failed", extra={"job": job_key})
            self._finish(job_key, "failed", error=truncate_utf8(f"node_setup_failed: {exc}"))
        else:
            await self._execute(job_key, ctx, reraise=False, cancel=cancel.set)

    async def _check_targets(self, lease: PushLease, progress_url: str | None) -> None:
        allowed = self._settings.allowed_domain_hosts
        await check_target("domain_server_url", lease.domain_server_url, allowed)
        if progress_url is not None:
            await check_target("progress_url", progress_url, allowed)

    def _forget_cancel(self, job_key: str) -> None:
        self._cancels.pop(job_key, None)
        self._user_cancels.discard(job_key)
        if not self._cancels:
            self._idle.set()

    async def _execute(
        self,
        job_key: str,
        ctx: TaskContextView,
        *,
        reraise: bool,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        owned = job_key not in self._cancels  # a push job's: registered by _run_push
        if owned:
            self._cancels[job_key] = cancel or ctx.cancelled.set
            self._idle.clear()
        try:
            with log_context(job=job_key, task_id=ctx.lease.task.id):
                await self._handler(ctx, job_key)
        except asyncio.CancelledError:
            # Our own task was cancelled (shutdown past its bounds): the runner has already
            # killed its child; record the end before unwinding.
            if self._resumes_after_restart(job_key):
                self._restarts.keep_for_restart(job_key, ctx.reporter)
                raise
            artifacts = ctx.storage.artifacts()
            self._finish(job_key, "cancelled", error=SHUTDOWN, artifacts=artifacts)
            raise
        except Exception as exc:
            if isinstance(exc, PipelineInterruptedError):
                if self._queue_again(job_key, ctx.reporter):
                    return
                # As at a node shutdown: the job's own cancel (the lease engine's, for a lease
                # job) so that no receipt is sent and DMS hands the task out again.
                self._cancels[job_key]()
            self._record_failure(job_key, ctx, exc)
            if reraise:
                raise
        else:
            self._finish(job_key, "succeeded", artifacts=ctx.storage.artifacts())
        finally:
            if owned:
                self._forget_cancel(job_key)

    async def _handler(self, ctx: TaskContextView, job_key: str) -> None:
        outputs = self._outputs
        await run_splatter_job(
            ctx,
            self._settings,
            supervisor=self._supervisor,
            metrics=self._metrics,
            keep_outputs=None if outputs is None else partial(outputs.keep, job_key),
            reports_interruption=lambda _reason: (
                self._resumes_after_restart(job_key) or self._queues_again(job_key)
            ),
        )

    def _record_failure(self, job_key: str, ctx: TaskContextView, exc: Exception) -> None:
        artifacts = ctx.storage.artifacts()
        if isinstance(exc, JobCancelledError) or ctx.cancelled.is_set():
            if self._resumes_after_restart(job_key):
                self._restarts.keep_for_restart(job_key, ctx.reporter)
                return
            self._finish(job_key, "cancelled", error=str(exc), artifacts=artifacts)
            if job_key in self._user_cancels and job_key in self._pushes:
                # a DELETE ends the job for good, even when the stop made the runner keep
                # its folder
                remove_kept_folder(self._settings, ctx.lease.task.id)
            return
        token = ctx.storage.domain.token
        if isinstance(token, PushToken) and token.gave_up is not None:
            # the runner's message names the step that failed; the cause is the token
            reason = truncate_utf8(f"runner failed: {token.gave_up}")
        else:
            reason = runner_failure_reason(exc)
        self._finish(job_key, "failed", error=reason, artifacts=artifacts)

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

    # --- push jobs the node's stop interrupts (app.jobs.push_restart keeps them queued) ---

    def _resumes_after_restart(self, job_key: str) -> bool:
        """Whether a push job stopped now stays queued for the next start: the node is
        stopping and no ``DELETE`` asked the job to stop."""
        return (
            self._supervisor.stopping
            and job_key in self._pushes
            and job_key not in self._user_cancels
        )

    # --- push jobs whose child a SIGTERM the node did not send stopped ---

    def _queues_again(self, job_key: str) -> bool:
        """Whether a push job whose child a foreign SIGTERM stopped is queued again now: the
        node goes on, no ``DELETE`` asked it to stop, and it has been fewer than
        ``SIGTERM_REQUEUES`` times."""
        push = self._pushes.get(job_key)
        return (
            push is not None
            and self._accepting
            and not self._supervisor.stopping
            and job_key not in self._user_cancels
            and push.sigterm_requeues < SIGTERM_REQUEUES
        )

    def _queue_again(self, job_key: str, reporter: ProgressReporter) -> bool:
        """Queues a push job again at once (its token is still in memory) when
        :meth:`_queues_again`; its next run resumes in the folder the stopped run kept. A stop
        that begins meanwhile finds it queued and keeps it for the next start."""
        push = self._pushes.get(job_key)
        if push is None or not self._queues_again(job_key):
            return False
        attempt = push.sigterm_requeues + 1
        self._pushes[job_key] = dataclasses.replace(push, sigterm_requeues=attempt)
        progress = self.store.get(job_key).progress
        reporter.set_progress({**progress, "status": "queued", "interrupted_by": FOREIGN_SIGTERM})
        reporter.log_event(
            {
                "level": "warn",
                "stage": "runner",
                "message": "pipeline stopped by a SIGTERM the node did not send; queued again "
                f"to resume from its checkpoint (attempt {attempt} of {SIGTERM_REQUEUES})",
                "interrupted_by": FOREIGN_SIGTERM,
            }
        )
        self.store.requeue(job_key)
        self._queue.put_nowait(job_key)
        log.warning(
            "push job queued again after a foreign SIGTERM stopped its pipeline",
            extra={"job": job_key, "attempt": attempt, "of": SIGTERM_REQUEUES},
        )
        return True


def _tell_finished(work: LocalWork, record: JobRecord) -> None:
    try:
        work.finished(record)
    except Exception:
        log.exception("finishing a local job failed", extra={"job": record.id})
