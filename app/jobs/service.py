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
interrupts goes back to ``queued`` instead, below).

A push job's domain token (a :class:`~app.jobs.push_token.PushToken`, replaceable with
``PUT /jobs/{id}/token``) lives only in memory: the store keeps the envelope without it
(:func:`stored_envelope`). A push job a killed node left queued or running is queued again at
the next start (:meth:`JobService.resume_interrupted`): it waits up to ``TOKEN_WAIT_SECS`` for
``PUT /jobs/{id}/token``, then runs in the job folder the killed run kept, resuming. A push job
the node's own shutdown interrupts (running, queued, or waiting for its token) is left
``queued`` the same way (:meth:`JobService.stop`): the next start treats it exactly as after a
kill, and its ``progress_url`` is told so instead of being told it was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from app.jobs.envelope import PushLease, TokenGrant
from app.jobs.push_token import PushToken
from app.jobs.reporting import JobReporter, ProgressForwarder
from app.logs import log_context
from app.metrics import NodeMetrics
from app.ports import JobContextView, TaskContextView
from app.records import JobEvent, JobRecord, JobState, NewJob
from app.runner import JobCancelledError, run_splatter_job
from app.runner.errors import PipelineInterruptedError
from app.runner.workspace import UnsafeJobFolderError, job_folder_name, remove_job_root
from app.settings import Settings
from app.store import JobStore
from app.targets import ForbiddenTargetError, check_target
from app.viewer.outputs import JobOutputs
from app.worker.supervisor import WorkerSupervisor
from domain_client.delivery import ProgressReporter
from domain_client.errors import TaskCancelled
from domain_client.models import ArtifactRecord, Lease
from domain_client.receipts import runner_failure_reason, truncate_utf8
from domain_client.storage import TaskStorage
from domain_client.timestamps import format_timestamp, utc_now

__all__ = [
    "DuplicateTaskError",
    "IntakeUnavailableError",
    "JobFinishedError",
    "JobService",
    "LocalJobContext",
    "LocalWork",
    "PushContextFactory",
    "QueueFullError",
    "TokenNotAcceptedError",
    "stored_envelope",
]

log = logging.getLogger(__name__)

SHUTDOWN = "node shutting down"
"""Why a job the node's stop interrupted ended, or (a push job) stays queued."""
RETENTION_SWEEP_SECS = 3600.0
"""How often finished jobs past ``JOB_RETENTION_DAYS`` are deleted (also once at start)."""
QUEUE_FULL_RETRY_AFTER_SECS = 60
#: The envelope fields the store never keeps: the domain token (and its expiry, meaningless
#: without it).
_SECRET_FIELDS = frozenset({"access_token", "access_token_expires_at"})


def stored_envelope(lease: PushLease) -> dict[str, Any]:
    """A push envelope as the store keeps it: every field but the domain token."""
    return lease.model_dump(mode="json", exclude=set(_SECRET_FIELDS))


class _NotResumableError(RuntimeError):
    """A push job queued again after a restart that cannot run (the reason it fails with)."""


class PushContextFactory(Protocol):
    """Builds the task context of a push job (domain client + task storage for its lease)."""

    def __call__(
        self,
        lease: PushLease,
        reporter: ProgressReporter,
        cancelled: asyncio.Event,
        token: PushToken | None = None,
    ) -> TaskContextView: ...


class IntakeUnavailableError(RuntimeError):
    """The push door cannot take jobs now (the node is shutting down)."""


class DuplicateTaskError(RuntimeError):
    """A job for this DMS task is already queued or running."""

    def __init__(self, task_id: str, job: JobRecord, waiting_for_token: bool = False) -> None:
        hint = (
            "; it waits for a domain token after a node restart: PUT /jobs/{id}/token"
            if waiting_for_token
            else ""
        )
        super().__init__(f"task {task_id} is already {job.state} as job {job.id}{hint}")
        self.job = job


class JobFinishedError(RuntimeError):
    """The job has already ended; it cannot be cancelled."""


class QueueFullError(RuntimeError):
    """``SPLATTER_MAX_QUEUED`` push jobs are already waiting; try again after ``retry_after_s``."""

    def __init__(self, queued: int, retry_after_s: int) -> None:
        super().__init__(
            f"{queued} push jobs are already queued (SPLATTER_MAX_QUEUED); "
            f"retry in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class TokenNotAcceptedError(RuntimeError):
    """The job takes no pushed token (a lease job: DMS heartbeats rotate its token)."""


@dataclass(frozen=True)
class _RecordedContext:
    """A task context whose reporter also records into the store."""

    lease: Lease
    storage: TaskStorage
    reporter: ProgressReporter
    cancelled: asyncio.Event


@dataclass(frozen=True)
class _PushJob:
    """An active (queued or running) push job's in-memory half: what the store never sees."""

    lease: PushLease
    progress_url: str | None
    token: PushToken
    restored: asyncio.Event | None = None
    """Set for a job queued again after a restart (it may have a kept job folder): ends its
    wait for a token when the job is cancelled."""


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


class _TokenWaitReporter:
    """Tells a job's reporter (store, ``progress_url``) that it waits for a token, and when
    it got one (the progress before the wait is restored)."""

    def __init__(
        self,
        store: JobStore,
        job_key: str,
        reporter: ProgressReporter,
        cause: str = "the domain server refused the token (401)",
    ) -> None:
        self._store = store
        self._job_key = job_key
        self._reporter = reporter
        self._cause = cause
        self._waiting = 0
        self._before: dict[str, Any] = {}

    def waiting(self, wait_s: float) -> None:
        self._waiting += 1
        if self._waiting > 1:
            return  # a parallel request is already waiting and has said so
        self._before = self._store.get(self._job_key).progress
        self._reporter.set_progress(
            {**self._before, "status": "waiting_for_token", "token_wait_s": wait_s}
        )
        self._reporter.log_event(
            {
                "level": "warn",
                "stage": "token",
                "message": f"{self._cause}; waiting up to "
                f"{wait_s:g} s for PUT /jobs/{self._job_key}/token",
            }
        )

    def resumed(self) -> None:
        self._waiting = max(0, self._waiting - 1)
        if self._waiting:
            return
        self._reporter.log_event(
            {"level": "info", "stage": "token", "message": "new domain token received"}
        )
        self._reporter.set_progress(self._before)


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
        self._pushes: dict[str, _PushJob] = {}
        self._token_waits: dict[str, asyncio.Task[None]] = {}
        self._locals: dict[str, LocalWork] = {}
        self._cancels: dict[str, Callable[[], None]] = {}
        self._user_cancels: set[str] = set()
        """Running jobs a ``DELETE`` asked to stop (they end ``cancelled`` even at a shutdown)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._accepting = False

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
        drain = self._settings.shutdown_drain_secs
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain)
        for cancel in list(self._cancels.values()):
            cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._settings.cancel_grace_secs + 10.0)
        # queued or waiting for a token (a running one left past the bounds is recorded below,
        # when its task is cancelled)
        waiting = {
            job_key: push
            for job_key, push in self._pushes.items()
            if self.store.get(job_key).state == "queued"
        }
        for task in (self._worker, self._sweeper, *self._token_waits.values()):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.gather(*(self._keep_queued(key, push) for key, push in waiting.items()))
        for job_key in [*self._locals]:
            self._cancel_queued(job_key, SHUTDOWN)
        self._pushes.clear()
        self._locals.clear()
        self._token_waits.clear()

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
            raise DuplicateTaskError(task_id, active, active.id in self._token_waits)
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
        self._pushes[record.id] = _PushJob(lease, progress_url, token)
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
        restored = push is not None and push.restored is not None
        reason = "cancelled before it started"
        if job_key in self._token_waits:
            reason = "cancelled while waiting for a domain token"
        if self._cancel_queued(job_key, reason):
            if restored:  # a cancel ends the job for good: its kept folder goes
                self._remove_kept_folder(record.task_id)
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
        unfinished (the store put them back to ``queued``: :meth:`JobStore.recover_interrupted`
        with ``requeue=("push",)``); returns their ids.

        The store has each job's envelope but never its token, so each waits up to
        ``TOKEN_WAIT_SECS`` for ``PUT /jobs/{id}/token`` (progress ``"status":
        "waiting_for_token"``, also sent to its ``progress_url``), then joins the queue and
        runs in the job folder its killed run kept, resuming from its checkpoint. A job whose
        envelope is missing or unreadable, whose lease has expired (``lease_expires_at``) or
        whose URLs the SSRF rules now refuse fails at once (``node restarted: ...``); so does
        one that gets no token in time. Its kept folder is left to ``RESUME_RETENTION_HOURS``.
        """
        requeued: list[str] = []
        for record in self.store.queued_jobs("push"):
            try:
                lease = self._restored_lease(record)
                await self._check_targets(lease, record.progress_url)
            except (_NotResumableError, ForbiddenTargetError) as exc:
                self._fail_restored(record.id, truncate_utf8(f"node restarted: {exc}"))
                continue
            cancelled = asyncio.Event()
            token = PushToken("")
            token.cancelled = cancelled
            push = _PushJob(lease, record.progress_url, token, restored=cancelled)
            self._pushes[record.id] = push
            self._token_waits[record.id] = asyncio.create_task(
                self._await_token(record.id, push), name=f"token-wait {record.id}"
            )
            requeued.append(record.id)
        if requeued:
            log.warning(
                "push jobs interrupted by a restart wait for a domain token",
                extra={"jobs": requeued, "token_wait_s": self._settings.token_wait_secs},
            )
        return requeued

    def _restored_lease(self, record: JobRecord) -> PushLease:
        text = self.store.push_envelope(record.id)
        if text is None:
            raise _NotResumableError(
                "the job's envelope was not stored (queued by an older node); push the task again"
            )
        try:
            stored = json.loads(text)
            if not isinstance(stored, dict):
                raise ValueError("not a JSON object")
            # the token is PUT later; the lease is checked with a stand-in, then holds none
            lease = PushLease.model_validate({**stored, "access_token": "not stored"})
        except ValueError as exc:  # ValidationError is one
            raise _NotResumableError(
                f"the stored envelope cannot be read ({_problem(exc)}); push the task again"
            ) from exc
        if lease.task.id != record.task_id:
            raise _NotResumableError("the stored envelope names another task; push the task again")
        expiry = lease.lease_expires_at
        if expiry is not None and expiry <= utc_now():
            raise _NotResumableError(
                f"the pushed lease expired at {format_timestamp(expiry)} (lease_expires_at); "
                "push the task again with a fresh lease"
            )
        return lease.model_copy(update={"access_token": ""})

    async def _await_token(self, job_key: str, push: _PushJob) -> None:
        """A restored push job's wait for its token; then it joins the queue, or fails."""
        forwarder = self._forwarder(push.progress_url)
        reporter = JobReporter(self.store, job_key, [] if forwarder is None else [forwarder])
        push.token.listener = _TokenWaitReporter(
            self.store, job_key, reporter,
            "the node restarted and a push job's domain token is never stored",
        )  # fmt: skip
        try:
            arrived = await push.token.arrives(self._settings.token_wait_secs)
        except TaskCancelled:
            return  # DELETE (or the shutdown) has recorded the end
        finally:
            push.token.listener = None
            self._token_waits.pop(job_key, None)
            if forwarder is not None:
                await forwarder.close()
        if arrived:
            self._queue.put_nowait(job_key)
            return
        if self._pushes.pop(job_key, None) is not None:
            self._fail_restored(job_key, truncate_utf8(push.token.gave_up or "no domain token"))

    def _fail_restored(self, job_key: str, reason: str) -> None:
        """Fails a restored push job that cannot run; its kept folder stays (retention)."""
        self.store.add_event(job_key, {"level": "error", "stage": "runner", "message": reason})
        if self.store.fail_queued(job_key, reason):
            self._metrics.job_finished("failed")
            log.warning("job finished", extra={"job": job_key, "state": "failed", "error": reason})

    def _remove_kept_folder(self, task_id: str) -> None:
        try:
            folder = self._settings.tasks_root / job_folder_name(task_id)
        except UnsafeJobFolderError:
            return
        remove_job_root(folder, self._settings.disable_tasks_cleanup, self._settings.tasks_root)

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
            self._finish(job_key, "cancelled", error="node shutting down")
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

    async def _run_push(self, job_key: str, push: _PushJob) -> None:
        cancel = asyncio.Event()
        self._cancels[job_key] = cancel.set
        self._idle.clear()
        forwarder = self._forwarder(push.progress_url)
        reporter = JobReporter(self.store, job_key, [] if forwarder is None else [forwarder])
        push.token.listener = _TokenWaitReporter(self.store, job_key, reporter)
        try:
            await self._check_targets(push.lease, push.progress_url)  # DNS may have moved
            ctx = self._context_factory(push.lease, reporter, cancel, push.token)
        except Exception as exc:
            log.exception("push job setup failed", extra={"job": job_key})
            self._finish(job_key, "failed", error=truncate_utf8(f"node_setup_failed: {exc}"))
        else:
            await self._execute(job_key, ctx, reraise=False, cancel=cancel.set)
        finally:
            if forwarder is not None:
                await forwarder.close()  # before the job counts as ended: the stop waits for it
            self._forget_cancel(job_key)

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
                self._keep_for_restart(job_key, ctx.reporter)
                raise
            artifacts = ctx.storage.artifacts()
            self._finish(job_key, "cancelled", error=SHUTDOWN, artifacts=artifacts)
            raise
        except Exception as exc:
            if isinstance(exc, PipelineInterruptedError):
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
            reports_interruption=lambda _reason: self._resumes_after_restart(job_key),
        )

    def _record_failure(self, job_key: str, ctx: TaskContextView, exc: Exception) -> None:
        artifacts = ctx.storage.artifacts()
        if isinstance(exc, JobCancelledError) or ctx.cancelled.is_set():
            if self._resumes_after_restart(job_key):
                self._keep_for_restart(job_key, ctx.reporter)
                return
            self._finish(job_key, "cancelled", error=str(exc), artifacts=artifacts)
            if job_key in self._user_cancels and job_key in self._pushes:
                # a DELETE ends the job for good, even when the stop made the runner keep
                # its folder
                self._remove_kept_folder(ctx.lease.task.id)
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

    def _forwarder(self, url: str | None, *, start: bool = True) -> ProgressForwarder | None:
        """A relay to ``url`` (``None`` without one); unstarted, it sends only at ``close()``."""
        if url is None:
            return None
        forwarder = ProgressForwarder(self._http, url)
        if start:
            forwarder.start()
        return forwarder

    # --- push jobs the node's stop interrupts ---

    def _resumes_after_restart(self, job_key: str) -> bool:
        """Whether a push job stopped now stays queued for the next start: the node is
        stopping and no ``DELETE`` asked the job to stop."""
        return (
            self._supervisor.stopping
            and job_key in self._pushes
            and job_key not in self._user_cancels
        )

    def _keep_for_restart(self, job_key: str, reporter: ProgressReporter) -> None:
        """Leaves a push job the stop interrupted ``queued`` (a running one goes back to it),
        telling its reporter (store, ``progress_url``) that it runs again after the restart."""
        record = self.store.get(job_key)
        try:
            kept = (self._settings.tasks_root / job_folder_name(record.task_id)).is_dir()
        except UnsafeJobFolderError:
            kept = False
        then = "resumes in its kept job folder" if kept else "runs"
        queued = "is queued again" if record.state == "running" else "stays queued"
        progress = {k: v for k, v in record.progress.items() if k != "token_wait_s"}
        reporter.set_progress({**progress, "status": "interrupted", "interrupted_by": SHUTDOWN})
        reporter.log_event(
            {
                "level": "warn",
                "stage": "shutdown",
                "message": f"interrupted: {SHUTDOWN}; the job {queued}: at the next start it "
                f"waits for PUT /jobs/{job_key}/token (a push job's token is never stored), "
                f"then {then}",
                "interrupted_by": SHUTDOWN,
            }
        )
        self.store.requeue(job_key)
        log.info(
            "push job stays queued for the next start",
            extra={"job": job_key, "was": record.state, "kept_folder": kept},
        )

    async def _keep_queued(self, job_key: str, push: _PushJob) -> None:
        """At the stop: a push job still queued (or waiting for its token) stays queued; its
        ``progress_url`` is told so (one POST, at most a few seconds)."""
        forwarder = self._forwarder(push.progress_url, start=False)
        reporter = JobReporter(self.store, job_key, [] if forwarder is None else [forwarder])
        try:
            self._keep_for_restart(job_key, reporter)
        finally:
            if forwarder is not None:
                await forwarder.close()


def _problem(exc: ValueError) -> str:
    """What is wrong with a stored envelope, in one line (at most three fields named)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'envelope'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _tell_finished(work: LocalWork, record: JobRecord) -> None:
    try:
        work.finished(record)
    except Exception:
        log.exception("finishing a local job failed", extra={"job": record.id})
