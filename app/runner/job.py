"""``run_splatter_job``: one ``/splatter/colmap/v1`` task, from free-disk check to final progress.

The same coroutine serves the lease engine (as its handler) and the push door. It returns
normally on success (the caller sends ``complete`` with ``ctx.storage.artifacts()``), raises
:class:`SplatterJobError` on failure (reason ``runner failed: <str(error)>``) and
:class:`JobCancelledError` when the cancel flag stopped it. It does not take the worker slot: the
caller holds :attr:`WorkerSupervisor.slot` for the whole job. A job that outlasts
``JOB_TIMEOUT_SECS`` is stopped (its child killed) and fails ``job timed out after N s``.

The job folder is removed when the job ends for good (success, a failure, a DMS or user
cancel) and kept for a resume when its run was interrupted: the node shutting down, a lost
lease, a required upload that failed (:mod:`app.runner.retention`). The same task id leased
again reuses what the kept folder holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from app.metrics import NodeMetrics
from app.ports import TaskContextView
from app.runner import progress
from app.runner.cancel import check_cancelled
from app.runner.errors import (
    FOREIGN_SIGTERM,
    JobCancelledError,
    PipelineInterruptedError,
    RequiredUploadError,
    SplatterJobError,
)
from app.runner.inputs import InputLimits, resolve_inputs
from app.runner.python_stage import run_python_stage
from app.runner.retention import (
    MARKER,
    evict_oldest,
    mark_interrupted,
    mark_running,
    sweep_expired,
)
from app.runner.uploads import upload_outputs
from app.runner.workspace import (
    check_free_disk,
    create_job_folder,
    free_disk_bytes,
    job_layout,
    remove_job_root,
)
from app.settings import Settings
from app.worker.supervisor import WorkerSupervisor
from domain_client.delivery import ProgressReporter
from pipeline.contract import JobLayout

__all__ = ["end_workspace", "make_room", "run_splatter_job"]

log = logging.getLogger(__name__)


async def run_splatter_job(
    ctx: TaskContextView,
    settings: Settings,
    *,
    supervisor: WorkerSupervisor | None = None,
    metrics: NodeMetrics | None = None,
    keep_outputs: Callable[[Path], object] | None = None,
    reports_interruption: Callable[[str], bool] | None = None,
) -> None:
    """Runs one splatter task in ``<TASKS_ROOT>/<task_id>`` and removes the folder afterwards.

    Args:
        ctx: lease, task storage, progress reporter and cancel flag (``domain_client``'s
            ``TaskContext`` or anything shaped like it).
        settings: the node settings (workspace, pipeline command, limits).
        supervisor: starts the pipeline child; a private one when omitted.
        metrics: where durations, bytes and training steps are counted; private when omitted.
        keep_outputs: called with ``refined/splatter`` after a successful upload, before the
            folder is removed (the viewer keeps a copy of the outputs).
        reports_interruption: asked, with the reason, when a cancelled run keeps its folder for
            a resume (``node shutting down``, ...); ``True`` means the caller reports the
            interruption itself, and the cancellation progress and event are not sent (a push
            job the node's shutdown stopped stays queued for the next start).

    Raises:
        SplatterJobError: the job failed; ``str(error)`` is the reference's top-level message.
        JobCancelledError: the cancel flag was set (no receipt must be sent).
    """
    supervisor = supervisor or WorkerSupervisor(settings)
    metrics = metrics or NodeMetrics()
    try:
        layout = job_layout(settings.tasks_root, str(ctx.lease.task.id))
    except SplatterJobError as exc:  # no folder was made, so none is removed
        _report_error(ctx, exc)
        raise
    started = time.monotonic()
    keep_reason: str | None = None
    try:
        await _run_within_limit(ctx, settings, layout, supervisor, metrics)
        if keep_outputs is not None:
            keep_outputs(layout.splatter_dir)
    except JobCancelledError as exc:
        keep_reason = _interruption(ctx, supervisor)
        if keep_reason is None and isinstance(exc, PipelineInterruptedError):
            keep_reason = FOREIGN_SIGTERM
        _report_cancelled(ctx, exc, keep_reason, reports_interruption)
        raise
    except RequiredUploadError as exc:
        keep_reason = _interruption(ctx, supervisor)
        if keep_reason is None and not ctx.cancelled.is_set():
            keep_reason = "required upload failed"
        _report_error(ctx, exc)
        raise
    except SplatterJobError as exc:
        _report_error(ctx, exc)
        raise
    except asyncio.CancelledError:  # stopped past the grace period (shutdown, lost lease)
        keep_reason = _interruption(ctx, supervisor)
        raise
    except Exception as exc:
        if ctx.cancelled.is_set():
            keep_reason = _interruption(ctx, supervisor)
            cancelled = JobCancelledError("runner")
            _report_cancelled(ctx, cancelled, keep_reason, reports_interruption)
            raise cancelled from exc
        log.exception("splatter runner crashed")
        failure = SplatterJobError(str(exc) or type(exc).__name__)
        _report_error(ctx, failure)
        raise failure from exc
    finally:
        end_workspace(layout, settings, keep_reason)
        metrics.observe_stage("job", time.monotonic() - started)


def _interruption(ctx: TaskContextView, supervisor: WorkerSupervisor) -> str | None:
    """Why a stopped job may resume later, or ``None`` when it ended for good (a DMS or user
    cancel)."""
    if supervisor.stopping:
        return "node shutting down"
    if getattr(ctx, "lease_lost", False):  # domain_client's TaskContext; push jobs have none
        return "lease lost"
    return None


def end_workspace(layout: JobLayout, settings: Settings, keep_reason: str | None) -> None:
    """Keeps an interrupted job's folder (marked) or removes a finished one."""
    keep = keep_reason is not None and settings.resume_retention_hours > 0
    if keep and layout.root.is_dir():
        assert keep_reason is not None
        mark_interrupted(layout.root, keep_reason)
        log.info(
            "job folder kept for a resume",
            extra={"job_root": str(layout.root), "reason": keep_reason},
        )
        return
    if settings.disable_tasks_cleanup:  # kept for debugging, not for a resume
        (layout.root / MARKER).unlink(missing_ok=True)
    remove_job_root(layout.root, settings.disable_tasks_cleanup, settings.tasks_root)


def make_room(settings: Settings, layout: JobLayout) -> None:
    """Drops expired kept folders, then, while the disk is short, the oldest other ones."""
    retention_s = settings.resume_retention_hours * 3600.0
    sweep_expired(settings.tasks_root, retention_s, keep=layout.root)
    need = settings.min_free_disk_mb * 1024 * 1024
    evict_oldest(
        settings.tasks_root, lambda: free_disk_bytes(settings.tasks_root) >= need, layout.root
    )


async def _run_within_limit(
    ctx: TaskContextView,
    settings: Settings,
    layout: JobLayout,
    supervisor: WorkerSupervisor,
    metrics: NodeMetrics,
) -> None:
    """:func:`_run` bounded by ``JOB_TIMEOUT_SECS`` (the profile's default when unset)."""
    limit_s = settings.job_timeout_s
    deadline = asyncio.timeout(limit_s)
    try:
        async with deadline:
            await _run(ctx, settings, layout, supervisor, metrics)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise SplatterJobError(
            f"job timed out after {limit_s:g} s (JOB_TIMEOUT_SECS); the pipeline was stopped"
        ) from exc


async def _run(
    ctx: TaskContextView,
    settings: Settings,
    layout: JobLayout,
    supervisor: WorkerSupervisor,
    metrics: NodeMetrics,
) -> None:
    make_room(settings, layout)
    check_free_disk(settings.tasks_root, settings.min_free_disk_mb)
    check_cancelled(ctx, "before execution")
    _prepare_workspace(ctx, layout)

    started = time.monotonic()
    inputs = await resolve_inputs(ctx, layout, InputLimits.from_settings(settings))
    metrics.add_downloaded(inputs.bytes_downloaded)
    metrics.observe_stage("inputs", time.monotonic() - started)
    counts = inputs.counts.as_dict()
    ctx.reporter.set_progress(progress.inputs_materialized(inputs.counts))
    ctx.reporter.log_event(
        {"level": "info", "stage": "inputs", "message": "inputs materialized", **counts}
    )

    done = await run_python_stage(
        ctx, layout.root, supervisor, metrics, settings.progress_min_interval_secs
    )

    started = time.monotonic()
    uploads = await upload_outputs(
        ctx, layout, done, inputs.suffix, settings.splatter_convert_to_sog
    )
    metrics.add_uploaded(uploads.bytes_uploaded)
    metrics.observe_stage("upload", time.monotonic() - started)
    final = progress.final_progress(uploads.splat, uploads.previews, uploads.video)
    ctx.reporter.set_progress(progress.with_report(final, uploads.report, uploads.metrics))


def begin_run(root: Path, task_id: str, reporter: ProgressReporter) -> None:
    """Marks ``root`` as running (:func:`mark_running`); when an earlier run kept it, logs
    that this run resumes there and what interrupted that one."""
    kept = mark_running(root, task_id)
    if kept is not None:
        reporter.log_event(
            {"level": "info", "stage": "workspace",
             "message": "resuming in the job folder kept from an earlier run",
             "interrupted_by": kept.reason}
        )  # fmt: skip


def _prepare_workspace(ctx: TaskContextView, layout: JobLayout) -> None:
    create_job_folder(layout)
    task = ctx.lease.task
    begin_run(layout.root, str(task.id), ctx.reporter)
    ctx.reporter.set_progress(progress.workspace_prepared(layout.root))
    ctx.reporter.log_event(
        {
            "level": "info",
            "stage": "workspace",
            "message": "workspace prepared",
            "task_id": str(task.id),
            "job_id": None if task.job_id is None else str(task.job_id),
        }
    )


def _report_cancelled(
    ctx: TaskContextView,
    exc: JobCancelledError,
    keep_reason: str | None = None,
    reports_interruption: Callable[[str], bool] | None = None,
) -> None:
    if (
        keep_reason is not None
        and reports_interruption is not None
        and reports_interruption(keep_reason)
    ):
        return  # the caller says what happens to the job instead
    ctx.reporter.set_progress(dict(progress.CANCELLED))
    ctx.reporter.log_event({"level": "warn", "stage": "cancelled", "message": str(exc)})


def _report_error(ctx: TaskContextView, exc: SplatterJobError) -> None:
    event = {"level": "error", "stage": "runner", "message": str(exc)}
    if exc.__cause__ is not None:
        event["cause"] = str(exc.__cause__)
    ctx.reporter.log_event(event)
