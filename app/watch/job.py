"""One watch job: stage the dropped capture in a job folder, run the pipeline, publish.

The capture is staged as ``<TASKS_ROOT>/<task id>/capture/<label>[.ext]`` by hard links (a
copy across file systems), so the pipeline never writes into the inbox and the inbox entry
stays as dropped until the job ends. The child is ``python -m pipeline train CAPTURE --out
<job folder>/out``, which detects the layout (COLMAP project, nerfstudio data, photos, videos,
the Auki job folder) and says what it found when none fits; its reason becomes the job's error.
Everything ``out/`` holds except training checkpoints is published to the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.metrics import NodeMetrics
from app.ports import JobContextView
from app.records import JobRecord
from app.runner.cancel import check_cancelled
from app.runner.errors import SplatterJobError
from app.runner.python_stage import run_python_stage
from app.runner.workspace import check_free_disk, job_layout, prove_job_folder, remove_job_root
from app.settings import Settings
from app.watch.folders import WatchFolders, link_tree
from app.worker.supervisor import WorkerSupervisor
from pipeline.contract import JobLayout

__all__ = ["UNPUBLISHED", "WatchItem", "WatchRun"]

UNPUBLISHED = ("checkpoints",)
"""Entries of the pipeline's output folder that stay out of the outbox (resume state)."""


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
    """

    name: str
    label: str
    suffix: str
    content_hash: str
    attempt: int = 1
    stable_at: float = 0.0


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
        try:
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
        finally:
            remove_job_root(
                layout.root, self.settings.disable_tasks_cleanup, self.settings.tasks_root
            )

    def _stage(self, ctx: JobContextView, layout: JobLayout) -> Path:
        """Links the inbox entry into the job folder; returns the staged capture."""
        source = self.folders.inbox / self.item.name
        if not source.exists():
            raise SplatterJobError(f"the input {self.item.name!r} left the inbox before it ran")
        self.settings.tasks_root.mkdir(parents=True, exist_ok=True)
        root = prove_job_folder(self.settings.tasks_root, layout.root)
        capture = root / "capture" / f"{self.item.label}{self.item.suffix}"
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
