"""The python step of the runner: the pipeline child, its progress, its failure reasons."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

from app.metrics import NodeMetrics
from app.ports import JobContextView
from app.runner import progress
from app.runner.cancel import check_cancelled
from app.runner.errors import JobCancelledError, PipelineInterruptedError, SplatterJobError
from app.worker.process import ChildOutcome
from app.worker.supervisor import WorkerSupervisor
from pipeline.contract import DoneEvent, Event

__all__ = ["run_python_stage"]

#: The exit status of a pipeline run stopped by SIGTERM (128 + 15; ``pipeline.stop``).
EXIT_TERMINATED = 128 + signal.SIGTERM

log = logging.getLogger(__name__)


class _ChildEvents:
    """Maps the child's events onto the job's progress, events and metrics."""

    def __init__(self, ctx: JobContextView, metrics: NodeMetrics, min_interval_s: float) -> None:
        self._ctx = ctx
        self._metrics = metrics
        self._mapper = progress.PipelineProgressMapper(min_interval_s)
        self._last_step = 0

    def __call__(self, event: Event) -> None:
        mapped = self._mapper.on_event(event)
        if mapped.progress is not None:
            self._ctx.reporter.set_progress(mapped.progress)
        for job_event in mapped.events:
            self._ctx.reporter.log_event(job_event)
        if mapped.train_step is not None:
            self._metrics.add_training_steps(mapped.train_step - self._last_step)
            self._last_step = max(self._last_step, mapped.train_step)
        if mapped.stage_duration is not None:
            stage, seconds = mapped.stage_duration
            self._metrics.observe_stage(f"pipeline_{stage}", seconds)


async def run_python_stage(
    ctx: JobContextView,
    job_root: Path,
    supervisor: WorkerSupervisor,
    metrics: NodeMetrics,
    progress_min_interval_s: float,
    capture: Path | None = None,
) -> DoneEvent:
    """Runs the pipeline child on ``job_root`` (with a ``capture``: ``train capture --out
    job_root``); progress 35 → 80. Returns its ``done`` event (what to upload; one listing
    nothing when the child sent none).

    Raises:
        JobCancelledError: the cancel flag stopped the child (``task cancelled: python execution``).
        PipelineInterruptedError: a SIGTERM the node did not send stopped the child.
        SplatterJobError: the child could not start, or ended with a non-zero status or a signal.
    """
    check_cancelled(ctx, "before python start")
    script = supervisor.describe_command(job_root, capture)
    ctx.reporter.set_progress(progress.python_starting(job_root, script))
    ctx.reporter.log_event(
        {
            "level": "info",
            "stage": "python",
            "message": "python pipeline starting",
            "script": script,
        }
    )
    on_event = _ChildEvents(ctx, metrics, progress_min_interval_s)
    try:
        outcome = await supervisor.run_pipeline(job_root, ctx.cancelled, on_event, capture)
    except OSError as exc:
        raise SplatterJobError(f"spawn {script}: {exc.strerror or exc}") from exc
    metrics.observe_stage("python", outcome.duration_ms / 1000)
    if outcome.cancelled:
        raise JobCancelledError("python execution")
    if _terminated(outcome):
        log.warning("pipeline stopped by a SIGTERM the node did not send; keeping its work")
        raise PipelineInterruptedError(outcome.error_message)
    if not outcome.succeeded:
        _report_failure(ctx, outcome)
        raise SplatterJobError(outcome.failure_reason())
    ctx.reporter.set_progress(progress.python_completed(outcome.duration_ms))
    ctx.reporter.log_event(
        {
            "level": "info",
            "stage": "python",
            "message": "python pipeline completed",
            **_summary(outcome),
        }
    )
    return _done_event(outcome)


def _terminated(outcome: ChildOutcome) -> bool:
    """True when SIGTERM ended the child: it exited 143 (checkpoint written: ``pipeline.stop``)
    or died of the signal before its handler was installed. Only meaningful when the node did
    not stop it itself (``outcome.cancelled`` is false)."""
    return outcome.exit_code == EXIT_TERMINATED or outcome.signal_number == signal.SIGTERM


def _done_event(outcome: ChildOutcome) -> DoneEvent:
    """The child's ``done`` event; one listing no outputs when it sent none (the upload then
    fails naming the missing splat, as the reference does)."""
    if outcome.done is not None:
        return outcome.done
    log.warning("pipeline exited 0 without a done event; it listed no outputs")
    return DoneEvent(outputs={}, duration_s=outcome.duration_ms / 1000)


def _report_failure(ctx: JobContextView, outcome: ChildOutcome) -> None:
    ctx.reporter.set_progress(dict(progress.PYTHON_FAILED))
    ctx.reporter.log_event(
        {
            "level": "error",
            "stage": "python",
            "message": "python job failed",
            **_summary(outcome),
            "signal": outcome.signal_name,
            "tail": outcome.tail,
        }
    )


def _summary(outcome: ChildOutcome) -> dict[str, Any]:
    return {
        "status": outcome.exit_code,
        "duration_ms": outcome.duration_ms,
        "stdout_lines": outcome.stdout_lines,
        "stderr_lines": outcome.stderr_lines,
    }
