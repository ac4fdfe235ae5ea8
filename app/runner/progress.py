"""Progress and event JSON of the splatter runner (protocol §3.7, variant V1 with previews).

The reference sequence is 5 (workspace) → 20 (inputs) → 35 (python starting) → 80 (python
completed) → 90 / 92 / 95 (uploads) → ``{"progress": 100, ...}``. The reference is silent
between 35 and 80; here the pipeline child's events (:mod:`pipeline.contract`) fill that span:
each pipeline stage (:data:`~pipeline.contract.STAGES`) owns a slice of it (training the
largest), so ``pct`` rises monotonically, and training updates carry ``step``, ``total``,
``loss``, ``gaussians`` and ``eta_s``. Those updates are throttled (each one costs a DMS
heartbeat); stage changes always go out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from pipeline.contract import (
    STAGES,
    Event,
    MetricsEvent,
    ProgressEvent,
    SnapshotEvent,
    StageEvent,
    WarningEvent,
    event_dict,
)

__all__ = [
    "CANCELLED",
    "PIPELINE_SPANS",
    "PYTHON_FAILED",
    "InputCounts",
    "MappedEvent",
    "PipelineProgressMapper",
    "final_progress",
    "inputs_materialized",
    "python_completed",
    "python_starting",
    "snapshot_event",
    "splat_uploaded",
    "upload_completed",
    "upload_starting",
    "uploaded_keys",
    "with_report",
    "workspace_prepared",
]

Progress = dict[str, Any]

PYTHON_FAILED: Progress = {"pct": 35, "stage": "python", "status": "failed"}
CANCELLED: Progress = {"stage": "cancelled", "status": "cancelled"}

#: Where each pipeline stage starts and ends inside the python step (35–80 %), in stage order.
#: ``frames`` (a job) and ``sfm`` (photos and videos, ``train``) never both run.
_SPAN_EDGES = (35.0, 37.0, 39.0, 41.0, 76.0, 77.0, 79.0, 80.0)
#: Overall percentage span of each pipeline stage inside the python step (35–80).
PIPELINE_SPANS: dict[str, tuple[float, float]] = dict(
    zip(STAGES, pairwise(_SPAN_EDGES), strict=True)
)
_TRAINING_KEYS = ("step", "total", "loss", "gaussians", "eta_s", "resumed_from")


@dataclass
class InputCounts:
    """Counters of input resolution, reported at 20 % (names as in the reference)."""

    datasets: int = 0
    metadata_chunks: int = 0
    metadata_items: int = 0
    recording_failures: int = 0
    colmap_downloaded: int = 0
    colmap_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "datasets": self.datasets,
            "metadata_chunks": self.metadata_chunks,
            "metadata_items": self.metadata_items,
            "recording_failures": self.recording_failures,
            "colmap_downloaded": self.colmap_downloaded,
            "colmap_failed": self.colmap_failed,
        }


def workspace_prepared(job_root: Path) -> Progress:
    return {"pct": 5, "stage": "workspace", "status": "prepared", "job_root": str(job_root)}


def inputs_materialized(counts: InputCounts) -> Progress:
    return {"pct": 20, "stage": "inputs", "status": "materialized", **counts.as_dict()}


def python_starting(job_root: Path, script: str) -> Progress:
    return {
        "pct": 35,
        "stage": "python",
        "status": "starting",
        "job_root_path": str(job_root),
        "script": script,
    }


def python_completed(duration_ms: int) -> Progress:
    return {"pct": 80, "stage": "python", "status": "completed", "duration_ms": duration_ms}


def upload_starting(artifact: str) -> Progress:
    return {"pct": 90, "stage": "upload", "status": "starting", "artifact": artifact}


def splat_uploaded(name: str, splat_path: Path) -> Progress:
    return {
        "pct": 92,
        "stage": "upload",
        "status": "splat_uploaded",
        "uploaded": name,
        "splat_path": str(splat_path),
    }


def uploaded_keys(splat: str, previews: Sequence[str], video: str | None) -> Progress:
    return {
        "uploaded_splat": splat,
        "uploaded_previews": list(previews),
        "uploaded_preview_video": video,
    }


def upload_completed(splat: str, previews: Sequence[str], video: str | None) -> Progress:
    return {
        "pct": 95,
        "stage": "upload",
        "status": "completed",
        **uploaded_keys(splat, previews, video),
    }


def final_progress(splat: str, previews: Sequence[str], video: str | None) -> Progress:
    return {
        "progress": 100,
        "stage": "complete",
        "status": "succeeded",
        **uploaded_keys(splat, previews, video),
    }


def with_report(progress: Progress, report: str | None, metrics: dict[str, float]) -> Progress:
    """``progress`` plus ``uploaded_report`` (when the quality report was uploaded) and the
    held-out ``metrics`` from it (when there are any)."""
    extra: Progress = {}
    if report is not None:
        extra["uploaded_report"] = report
    if metrics:
        extra["metrics"] = dict(metrics)
    return {**progress, **extra}


@dataclass
class MappedEvent:
    """What one pipeline event means for the job.

    Attributes:
        progress: a new progress object to publish, or ``None`` (throttled / no change).
        events: job events to log (stage completions, warnings, metrics).
        train_step: the training step reached, when the event reported one.
        stage_duration: ``(stage, seconds)`` when a stage completed.
    """

    progress: Progress | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    train_step: int | None = None
    stage_duration: tuple[str, float] | None = None


class PipelineProgressMapper:
    """Turns the child's events into overall progress objects (monotone ``pct`` in 35–80).

    Args:
        min_interval_s: minimum seconds between two published in-stage updates; stage changes
            are always published.
        clock: monotonic time source in seconds (tests pass a fake).
    """

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._pct = 35
        self._last_publish: float | None = None

    @property
    def pct(self) -> int:
        """The last overall percentage published."""
        return self._pct

    def on_event(self, event: Event) -> MappedEvent:
        if isinstance(event, StageEvent):
            return self._on_stage(event)
        if isinstance(event, ProgressEvent):
            return self._on_progress(event)
        if isinstance(event, WarningEvent):
            return MappedEvent(events=[_python_event("warn", event.message, event_dict(event))])
        if isinstance(event, MetricsEvent):
            fields = {k: v for k, v in event_dict(event).items() if k not in ("event", "stage")}
            return MappedEvent(
                events=[
                    {"level": "info", "stage": "python", "message": "training metrics", **fields}
                ]
            )
        if isinstance(event, SnapshotEvent):
            return MappedEvent(events=[snapshot_event(event)])
        return MappedEvent()  # "done" / "error" are read from the outcome

    def _on_stage(self, event: StageEvent) -> MappedEvent:
        start, end = PIPELINE_SPANS[event.stage]
        if event.status == "started":
            return MappedEvent(progress=self._publish(start, event.stage, {}))
        mapped = MappedEvent(progress=self._publish(end, event.stage, {}))
        wire = event_dict(event)
        extras = {k: v for k, v in wire.items() if k not in ("event", "stage", "status")}
        skipped = event.status == "skipped"
        message = "pipeline stage skipped" if skipped else "pipeline stage completed"
        mapped.events.append(_python_event("info", message, {"stage": event.stage, **extras}))
        if event.status == "completed" and event.duration_s is not None:
            mapped.stage_duration = (event.stage, event.duration_s)
        return mapped

    def _on_progress(self, event: ProgressEvent) -> MappedEvent:
        start, end = PIPELINE_SPANS[event.stage]
        overall = start + (end - start) * event.pct / 100.0
        mapped = MappedEvent(train_step=event.step)
        now = self._clock()
        due = self._last_publish is None or now - self._last_publish >= self._min_interval_s
        if due and (event.stage == "train" or int(overall) > self._pct):
            extras = _training_fields(event) if event.stage == "train" else {}
            extras["stage_pct"] = round(event.pct, 2)
            mapped.progress = self._publish(overall, event.stage, extras)
        return mapped

    def _publish(self, overall: float, stage: str, extras: dict[str, Any]) -> Progress:
        self._pct = max(self._pct, min(int(overall), 80))
        self._last_publish = self._clock()
        return {
            "pct": self._pct,
            "stage": "python",
            "status": "running",
            "pipeline_stage": stage,
            **extras,
        }


def snapshot_event(event: SnapshotEvent) -> dict[str, Any]:
    """The job event of a live training snapshot: ``snapshot`` names the file (what
    ``GET /jobs/{id}/events`` announces and the viewer reloads)."""
    return {
        "level": "info",
        "stage": "python",
        "message": "training snapshot",
        "snapshot": event.file,
        "step": event.step,
        "gaussians": event.gaussians,
        "write_s": round(event.write_s, 4),
    }


def _training_fields(event: ProgressEvent) -> dict[str, Any]:
    """The training fields the child gave (other stages' ``eta_s`` is not published: §3.7's
    running values carry either all training fields or only ``stage_pct``)."""
    wire = event_dict(event)
    return {k: wire[k] for k in _TRAINING_KEYS if k in wire}


def _python_event(level: str, message: str, source: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {"level": level, "stage": "python", "message": message}
    if "stage" in source:
        event["pipeline_stage"] = source["stage"]
    event.update({k: v for k, v in source.items() if k not in ("event", "stage", "message")})
    return event
