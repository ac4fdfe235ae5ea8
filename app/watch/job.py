"""One watch job: stage the dropped capture in a job folder, run the pipeline, publish.

The capture is staged as ``<TASKS_ROOT>/<task id>/capture/<label>[.ext]`` by hard links (a
copy across file systems), so the pipeline never writes into the inbox and the inbox entry
stays as dropped until the job ends. The child is ``python -m pipeline train CAPTURE --out
<job folder>/out``, which detects the layout (COLMAP project, nerfstudio data, photos, videos,
the Auki job folder) and says what it found when none fits; its reason becomes the job's error.
Everything ``out/`` holds except training checkpoints is published to the outbox.

The task id is :func:`watch_task_id` of the input's content hash, so the same input always runs
in the same job folder. The folder carries the resume marker (:mod:`app.runner.retention`) like a
lease job's: it goes when the job ends for good (success, a failure, a ``DELETE``) and is kept
when the node stopping interrupted the run (or left ``running`` by a killed node), so the input
queued again from ``inbox/`` at the next start continues from the pipeline's checkpoint. It is
also kept when a SIGTERM the node did not send stopped the child (an operator, a container
runtime): the door then queues the input again at once (an attempt, up to
``WATCH_MAX_ATTEMPTS``) and the new run continues from the checkpoint the child wrote.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.metrics import NodeMetrics
from app.ports import JobContextView
from app.records import JobRecord
from app.runner.cancel import check_cancelled
from app.runner.errors import (
    FOREIGN_SIGTERM,
    JobCancelledError,
    PipelineInterruptedError,
    SplatterJobError,
)
from app.runner.job import begin_run, end_workspace, make_room
from app.runner.python_stage import run_python_stage
from app.runner.workspace import check_free_disk, job_layout, prove_job_folder
from app.settings import Settings
from app.watch.folders import WatchFolders, link_tree
from app.worker.supervisor import WorkerSupervisor
from pipeline.contract import JobLayout

__all__ = ["UNPUBLISHED", "WATCH_NAMESPACE", "WatchItem", "WatchRun", "watch_task_id"]

UNPUBLISHED = ("checkpoints",)
"""Entries of the pipeline's output folder that stay out of the outbox (resume state)."""

WATCH_NAMESPACE = uuid.UUID("5f0c2a6e-3b7d-5c1e-9a4f-2d8b6e0c1a37")
"""The UUID namespace of watch task ids (fixed: changing it orphans every kept folder)."""


def watch_task_id(content_hash: str) -> str:
    """The task id (and job folder name) of an input: a UUID v5 of its ``sha256:...`` hash, so
    an input queued again after a restart finds the folder its interrupted run kept."""
    return str(uuid.uuid5(WATCH_NAMESPACE, content_hash))


@dataclass
class WatchItem:
    """An inbox entry on its way through the door.

    Attributes:
        name: the entry's name in ``inbox/`` (already checked by ``name_problem``).
        label: the safe label of every folder made for it.
        suffix: the safe extension of a single file (``.mp4``), else empty.
        content_hash: ``sha256:...`` of its content (duplicates).
        attempt: 1 for the first run.
        stable_at: monotonic seconds when it became stable (latency).
        interrupted_by: why the last run kept its job folder for a resume (a SIGTERM the node
            did not send, the node stopping); ``None`` when it ended for good.
    """

    name: str
    label: str
    suffix: str
    content_hash: str
    attempt: int = 1
    stable_at: float = 0.0
    interrupted_by: str | None = None


@dataclass
class WatchRun:
    """The ``LocalWork`` of one watch job."""

    item: WatchItem
    folders: WatchFolders
    settings: Settings
    supervisor: WorkerSupervisor
    metrics: NodeMetrics
    task_id: str
    on_finished: Callable[[WatchItem, JobRecord], None]
    outbox: Path | None = None

    async def run(self, ctx: JobContextView) -> None:
        layout = job_layout(self.settings.tasks_root, self.task_id)
        keep_reason: str | None = None
        self.item.interrupted_by = None
        try:
            make_room(self.settings, layout)
            check_free_disk(self.settings.tasks_root, self.settings.min_free_disk_mb)
            check_cancelled(ctx, "before execution")
            capture = self._stage(ctx, layout)
            out = layout.root / "out"
            await run_python_stage(
                ctx,
                out,
                self.supervisor,
                self.metrics,
                self.settings.progress_min_interval_secs,
                capture=capture,
            )
            self.outbox = self.folders.publish(out, self.item.label, skip=UNPUBLISHED)
            ctx.reporter.set_progress({"pct": 100, "stage": "outbox", "status": "succeeded"})
            ctx.reporter.log_event(
                {
                    "level": "info",
                    "stage": "outbox",
                    "message": "outputs published",
                    "outbox": str(self.outbox.relative_to(self.folders.root)),
                }
            )
        except (JobCancelledError, asyncio.CancelledError) as exc:
            if self.supervisor.stopping:  # the node stopping, not a DELETE: resume next start
                keep_reason = "node shutting down"
            elif isinstance(exc, PipelineInterruptedError):  # not a DELETE: resume it now
                keep_reason = FOREIGN_SIGTERM
            raise
        finally:
            self.item.interrupted_by = keep_reason
            end_workspace(layout, self.settings, keep_reason)

    def _stage(self, ctx: JobContextView, layout: JobLayout) -> Path:
        """Links the inbox entry into the job folder; returns the staged capture."""
        source = self.folders.inbox / self.item.name
        if not source.exists():
            raise SplatterJobError(f"the input {self.item.name!r} left the inbox before it ran")
        self.settings.tasks_root.mkdir(parents=True, exist_ok=True)
        root = prove_job_folder(self.settings.tasks_root, layout.root)
        root.mkdir(exist_ok=True)
        begin_run(root, self.task_id, ctx.reporter)
        staged = root / "capture"
        shutil.rmtree(staged, ignore_errors=True)  # a kept folder's links: staged afresh
        capture = staged / f"{self.item.label}{self.item.suffix}"
        link_tree(source, capture)
        ctx.reporter.set_progress({"pct": 20, "stage": "inputs", "status": "staged"})
        ctx.reporter.log_event(
            {
                "level": "info",
                "stage": "inputs",
                "message": "capture staged",
                "input": self.item.name,
                "attempt": self.item.attempt,
            }
        )
        return capture

    def finished(self, record: JobRecord) -> None:
        self.on_finished(self.item, record)
