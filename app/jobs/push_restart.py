"""Push jobs across a node restart: queued again at start-up, left queued by a graceful stop.

A push job's domain token is never stored (:mod:`app.jobs.push_job`), so a push job a killed
node left queued or running cannot simply run again. At the next start
(:meth:`PushRestarts.resume_interrupted`) each one waits up to ``TOKEN_WAIT_SECS`` for
``PUT /jobs/{id}/token``, then joins the service's queue and runs in the job folder the killed
run kept, resuming; one that cannot run (no readable envelope, an expired lease, a URL the SSRF
rules refuse, no token in time) fails ``node restarted: ...``. A push job the node's own stop
interrupts (running, queued, or waiting for its token) is left ``queued`` the same way
(:meth:`PushRestarts.keep_for_restart`), and its ``progress_url`` is told so.

The job service owns the jobs; it hands :class:`PushRestarts` its registry of active push jobs,
its queue and its target check, and asks it when a stop interrupts a push job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx
from pydantic import ValidationError

from app.jobs.envelope import PushLease
from app.jobs.push_job import PushJob
from app.jobs.push_token import PushToken
from app.jobs.reporting import TokenWaitReporter, relayed_reporter
from app.metrics import NodeMetrics
from app.records import JobRecord
from app.runner.workspace import UnsafeJobFolderError, job_folder_name, remove_job_root
from app.settings import Settings
from app.store import JobStore
from app.targets import ForbiddenTargetError
from domain_client.delivery import ProgressReporter
from domain_client.errors import TaskCancelled
from domain_client.receipts import truncate_utf8
from domain_client.timestamps import format_timestamp, utc_now

__all__ = ["SHUTDOWN", "PushRestarts", "TargetCheck", "remove_kept_folder"]

log = logging.getLogger(__name__)

SHUTDOWN = "node shutting down"
"""Why a job the node's stop interrupted ended, or (a push job) stays queued."""

TargetCheck = Callable[[PushLease, str | None], Awaitable[None]]
"""Checks a push job's ``domain_server_url`` and ``progress_url`` (raises
``ForbiddenTargetError``)."""


class _NotResumableError(RuntimeError):
    """A push job queued again after a restart that cannot run (the reason it fails with)."""


def _kept_folder(settings: Settings, task_id: str) -> Path | None:
    """Where a task's job folder is (it may not exist); ``None`` for an unsafe task id."""
    try:
        return settings.tasks_root / job_folder_name(task_id)
    except UnsafeJobFolderError:
        return None


def remove_kept_folder(settings: Settings, task_id: str) -> None:
    """Removes the job folder a stopped run kept (a cancel ends the job for good)."""
    folder = _kept_folder(settings, task_id)
    if folder is not None:
        remove_job_root(folder, settings.disable_tasks_cleanup, settings.tasks_root)


class PushRestarts:
    """Queues push jobs again after a restart and keeps them queued across a stop.

    Args:
        store: the job store (``queued`` push jobs, their envelopes; ``requeue``).
        settings: ``TOKEN_WAIT_SECS``, ``TASKS_ROOT``.
        metrics: counts the jobs it fails.
        http: the client of ``progress_url`` relays.
        pushes: the service's active push jobs by job id; a restored job is added, and taken
            out again when it fails.
        enqueue: puts a job id on the service's queue (once its token arrived).
        check_targets: the service's check of a job's URLs.
    """

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        metrics: NodeMetrics,
        http: httpx.AsyncClient,
        *,
        pushes: dict[str, PushJob],
        enqueue: Callable[[str], None],
        check_targets: TargetCheck,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._http = http
        self._pushes = pushes
        self._enqueue = enqueue
        self._check_targets = check_targets
        self._token_waits: dict[str, asyncio.Task[None]] = {}

    # --- start-up ---

    async def resume_interrupted(self) -> list[str]:
        """At start-up: queues again the push jobs a previous process left unfinished (the
        store put them back to ``queued``: :meth:`JobStore.recover_interrupted` with
        ``requeue=("push",)``); returns their ids.

        The store has each job's envelope but never its token, so each waits up to
        ``TOKEN_WAIT_SECS`` for ``PUT /jobs/{id}/token`` (progress ``"status":
        "waiting_for_token"``, also sent to its ``progress_url``), then joins the queue and
        runs in the job folder its killed run kept, resuming from its checkpoint. A job whose
        envelope is missing or unreadable, whose lease has expired (``lease_expires_at``) or
        whose URLs the SSRF rules now refuse fails at once (``node restarted: ...``); so does
        one that gets no token in time. Its kept folder is left to ``RESUME_RETENTION_HOURS``.
        """
        requeued: list[str] = []
        for record in self._store.queued_jobs("push"):
            try:
                lease = self._restored_lease(record)
                await self._check_targets(lease, record.progress_url)
            except (_NotResumableError, ForbiddenTargetError) as exc:
                self._fail_restored(record.id, truncate_utf8(f"node restarted: {exc}"))
                continue
            self._wait_for_token(record.id, lease, record.progress_url)
            requeued.append(record.id)
        if requeued:
            log.warning(
                "push jobs interrupted by a restart wait for a domain token",
                extra={"jobs": requeued, "token_wait_s": self._settings.token_wait_secs},
            )
        return requeued

    def waits_for_token(self, job_key: str) -> bool:
        """Whether the job, queued again after a restart, still waits for its token."""
        return job_key in self._token_waits

    def _restored_lease(self, record: JobRecord) -> PushLease:
        text = self._store.push_envelope(record.id)
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

    def _wait_for_token(self, job_key: str, lease: PushLease, progress_url: str | None) -> None:
        """Registers a restored push job (no token yet) and starts its wait for one."""
        cancelled = asyncio.Event()
        token = PushToken("")
        token.cancelled = cancelled
        push = PushJob(lease, progress_url, token, restored=cancelled)
        self._pushes[job_key] = push
        self._token_waits[job_key] = asyncio.create_task(
            self._await_token(job_key, push), name=f"token-wait {job_key}"
        )

    async def _await_token(self, job_key: str, push: PushJob) -> None:
        """A restored push job's wait for its token; then it joins the queue, or fails."""
        async with relayed_reporter(self._store, self._http, job_key, push.progress_url) as rep:
            push.token.listener = TokenWaitReporter(
                self._store, job_key, rep,
                "the node restarted and a push job's domain token is never stored",
                resumed_status="queued",  # until the worker takes it (not the killed run's)
            )  # fmt: skip
            try:
                arrived = await push.token.arrives(self._settings.token_wait_secs)
            except TaskCancelled:
                return  # DELETE (or the shutdown) has recorded the end
            finally:
                push.token.listener = None
                self._token_waits.pop(job_key, None)
        if arrived:
            self._enqueue(job_key)
            return
        if self._pushes.pop(job_key, None) is not None:
            self._fail_restored(job_key, truncate_utf8(push.token.gave_up or "no domain token"))

    def _fail_restored(self, job_key: str, reason: str) -> None:
        """Fails a restored push job that cannot run; its kept folder stays (retention)."""
        self._store.add_event(job_key, {"level": "error", "stage": "runner", "message": reason})
        if self._store.fail_queued(job_key, reason):
            self._metrics.job_finished("failed")
            log.warning("job finished", extra={"job": job_key, "state": "failed", "error": reason})

    # --- the stop ---

    async def cancel_token_waits(self) -> None:
        """At the stop: ends every wait for a token (the jobs stay as they are: queued)."""
        for task in [*self._token_waits.values()]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._token_waits.clear()

    async def keep_queued(self, waiting: Mapping[str, PushJob]) -> None:
        """At the stop: push jobs still queued (or waiting for their token) stay queued; each
        one's ``progress_url`` is told so (one POST each, in parallel, at most a few seconds)."""
        await asyncio.gather(*(self._keep_queued(key, push) for key, push in waiting.items()))

    async def _keep_queued(self, job_key: str, push: PushJob) -> None:
        async with relayed_reporter(
            self._store, self._http, job_key, push.progress_url, live=False
        ) as reporter:
            self.keep_for_restart(job_key, reporter)

    def keep_for_restart(self, job_key: str, reporter: ProgressReporter) -> None:
        """Leaves a push job the stop interrupted ``queued`` (a running one goes back to it),
        telling its reporter (store, ``progress_url``) that it runs again after the restart."""
        record = self._store.get(job_key)
        folder = _kept_folder(self._settings, record.task_id)
        kept = folder is not None and folder.is_dir()
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
        self._store.requeue(job_key)
        log.info(
            "push job stays queued for the next start",
            extra={"job": job_key, "was": record.state, "kept_folder": kept},
        )


def _problem(exc: ValueError) -> str:
    """What is wrong with a stored envelope, in one line (at most three fields named)."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'envelope'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
