"""The job contract between the node (``app``) and the pipeline child (``python -m pipeline run``).

Both sides import this module and nothing else of each other: the node may import
``pipeline.contract`` but never the rest of the pipeline (the child stays a separate process).
It needs only the standard library and pydantic (no torch, no numpy), so importing it is cheap.

It defines:

- :class:`JobLayout`: where things live in a job folder (protocol §3.4), with containment checks;
- the file names of the outputs (:data:`EXPORT_FILES`, :data:`PREVIEW_FILES`) and of the COLMAP
  model (:data:`COLMAP_FILES`);
- :data:`STAGES`: the pipeline's stages, in order;
- :func:`parse_size` / :func:`format_size`: ``"WxH"`` sizes;
- the events: one frozen model per kind of JSON line the child prints on stdout, with
  :func:`encode_event` / :func:`parse_event` (bad lines raise :class:`EventError`);
- :func:`child_environment`: the allow-listed environment the child runs in, and
  :data:`SECRET_VARIABLES`, the node's secrets it never carries (defined in
  :mod:`pipeline.environment`, which is as light as this module, and re-exported here so that
  this module stays the node's one door into the pipeline).

Events, one JSON object per line, each with an ``event`` key:

``{"event": "stage", "stage": S, "status": "started" | "completed" | "skipped", ...}``
    a step begins or ends; ``completed`` carries ``duration_s`` and step-specific counts,
    ``skipped`` a ``reason`` (:class:`StageEvent`).
``{"event": "progress", "stage": S, "pct": P, ...}``
    ``pct`` is the percentage of stage ``S`` done (0..100). Training adds ``step``, ``total``,
    ``loss``, ``gaussians`` and ``eta_s`` (seconds left in the stage) (:class:`ProgressEvent`).
``{"event": "metrics", "stage": "train", "psnr": dB, "ssim": x, "views": n, "step": k}``
    held-out evaluation results (:class:`MetricsEvent`).
``{"event": "snapshot", "stage": "train", "file": "live.splat", "step": s, "gaussians": n,
"write_s": t}``
    a live training snapshot was written to ``refined/splatter/<file>`` (at most every
    ``--snapshot-every`` seconds) in ``write_s`` seconds (:class:`SnapshotEvent`).
``{"event": "warning", "stage": S, "message": text}``
    something best-effort failed (a preview), the run goes on (:class:`WarningEvent`).
``{"event": "done", "outputs": {file name: path}, "metrics": {...}, "warnings": [...],
"duration_s": s}``
    the last line of a successful run (exit code 0); the node uploads from ``outputs``
    (:class:`DoneEvent`).
``{"event": "error", "stage": S | null, "message": text}``
    the last line of a failed run (non-zero exit code; the same text on stderr)
    (:class:`ErrorEvent`).

Anything else the pipeline prints goes to stderr (logs), never stdout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from pipeline.environment import SECRET_VARIABLES, child_environment

__all__ = [
    "COLMAP_FILES",
    "COLMAP_REQUIRED_FILES",
    "EXPORT_FILES",
    "LIVE_META",
    "LIVE_SPLAT",
    "PREVIEW_ANGLE",
    "PREVIEW_CAMERA_PATH",
    "PREVIEW_FILES",
    "PREVIEW_TOP",
    "PREVIEW_VIDEO",
    "RECORDING_FILE",
    "REPORT_FILES",
    "REPORT_HTML",
    "REPORT_JSON",
    "ROTATED_PLY",
    "SECRET_VARIABLES",
    "SOG_FILE",
    "SPLAT_FILE",
    "SPLAT_PLY",
    "STAGES",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "EventError",
    "JobLayout",
    "MetricsEvent",
    "ProgressEvent",
    "SnapshotEvent",
    "Stage",
    "StageEvent",
    "WarningEvent",
    "child_environment",
    "encode_event",
    "event_dict",
    "event_from_dict",
    "format_size",
    "frame_name",
    "parse_event",
    "parse_size",
]

# --- stages -----------------------------------------------------------------------------------

Stage: TypeAlias = Literal["frames", "sfm", "dataset", "train", "export", "preview", "report"]
#: The pipeline's stages, in the order a run goes through them. ``frames`` runs for a job
#: folder, ``sfm`` (structure from motion) for photos and videos without poses
#: (``python -m pipeline train``); every other stage runs for every input.
STAGES: tuple[Stage, ...] = ("frames", "sfm", "dataset", "train", "export", "preview", "report")

# --- file names -------------------------------------------------------------------------------

#: One recording per scan: ``datasets/<scan>/Frames.mp4``.
RECORDING_FILE = "Frames.mp4"

#: The COLMAP binaries in ``refined/global/refined_sfm_combined/``, in the order the node
#: fetches them; a model needs :data:`COLMAP_REQUIRED_FILES`, the others are COLMAP ≥ 3.12's
#: (rigs and frames, read when present).
COLMAP_FILES: tuple[str, ...] = (
    "frames.bin",
    "images.bin",
    "cameras.bin",
    "points3D.bin",
    "rigs.bin",
)
COLMAP_REQUIRED_FILES: tuple[str, ...] = ("cameras.bin", "images.bin", "points3D.bin")

#: Export outputs in ``refined/splatter/``: nerfstudio-frame PLY, output-frame PLY, the
#: output-frame ``.splat`` (the one required artifact) and SOG (best effort).
SPLAT_PLY = "splat.ply"
ROTATED_PLY = "splat_rot.ply"
SPLAT_FILE = "splat_rot.splat"
SOG_FILE = "splat_rot.sog"
EXPORT_FILES: tuple[str, ...] = (SPLAT_PLY, ROTATED_PLY, SPLAT_FILE, SOG_FILE)

#: The training snapshot in ``refined/splatter/`` (output frame, replaced while training runs)
#: and its metadata, for the viewer.
LIVE_SPLAT = "live.splat"
LIVE_META = "live.json"

#: Preview outputs in ``refined/splatter/`` (best effort).
PREVIEW_TOP = "preview_top.jpg"
PREVIEW_ANGLE = "preview_angle.jpg"
PREVIEW_VIDEO = "preview.mp4"
PREVIEW_CAMERA_PATH = "preview_camera_path.json"
PREVIEW_FILES: tuple[str, ...] = (PREVIEW_TOP, PREVIEW_ANGLE, PREVIEW_VIDEO, PREVIEW_CAMERA_PATH)


#: The quality report in ``refined/splatter/`` (best effort): JSON, self-contained HTML, and the
#: folder of its pictures.
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
REPORT_FILES: tuple[str, ...] = (REPORT_JSON, REPORT_HTML)


def frame_name(scan: str, index: int) -> str:
    """The file name of frame ``index`` of recording ``scan``: ``<scan>_<index:06d>.jpg``."""
    return f"{scan}_{index:06d}.jpg"


# --- the job folder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobLayout:
    """Paths inside one job folder (the reference splatter node's layout, protocol §3.4).

    The node builds a task's layout only through ``app.runner.workspace.job_layout``, which
    proves the folder is ``<TASKS_ROOT>/<task uuid>``; the pipeline takes ``--job-root``.

    ::

        <TASKS_ROOT>/<task_id>/                      = root
          .input/                                    the input CID (node; removed once read)
          datasets/<scan>/Frames.mp4                 one recording per scan (input)
          refined/global/refined_sfm_combined/       COLMAP model: cameras, images, points3D,
                                                     (rigs, frames).bin (input)
          refined/global/refined_manifest.json       the input manifest (synthetic jobs)
          Frames/<scan>_<index:06d>.jpg              extracted frames, all scans in one folder
          refined/nerfstudio-data/                   transforms.json + sparse_pc.ply (nerfstudio)
          refined/splatter/                          splat.ply, splat_rot.ply, splat_rot.splat,
                                                     previews (outputs)
    """

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / ".input"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def recording(self, scan: str) -> Path:
        """The recording of ``scan``: ``datasets/<scan>/Frames.mp4``."""
        return self.datasets_dir / scan / RECORDING_FILE

    def scans(self) -> list[str]:
        """Scan names: the folders under ``datasets/``, sorted."""
        if not self.datasets_dir.is_dir():
            return []
        return sorted(p.name for p in self.datasets_dir.iterdir() if p.is_dir())

    def has_datasets(self) -> bool:
        """True when ``datasets/`` holds at least one entry."""
        return self.datasets_dir.is_dir() and any(self.datasets_dir.iterdir())

    @property
    def frames_dir(self) -> Path:
        return self.root / "Frames"

    @property
    def model_dir(self) -> Path:
        """The COLMAP model folder (:data:`COLMAP_FILES`)."""
        return self.root / "refined" / "global" / "refined_sfm_combined"

    @property
    def manifest_path(self) -> Path:
        return self.root / "refined" / "global" / "refined_manifest.json"

    @property
    def nerfstudio_dir(self) -> Path:
        return self.root / "refined" / "nerfstudio-data"

    @property
    def splatter_dir(self) -> Path:
        """Where the outputs go (:data:`EXPORT_FILES`, :data:`PREVIEW_FILES`)."""
        return self.root / "refined" / "splatter"

    @property
    def splat_file(self) -> Path:
        """The required output, ``refined/splatter/splat_rot.splat``."""
        return self.splatter_dir / SPLAT_FILE

    def contains(self, path: Path | str) -> bool:
        """True when ``path`` (relative paths are taken from :attr:`root`) lies inside the job
        folder once ``..`` steps and symbolic links are resolved."""
        root = self.root.resolve()
        target = (self.root / path).resolve()  # an absolute path replaces the root
        return target != root and target.is_relative_to(root)

    def inside(self, path: Path | str) -> Path:
        """``path`` resolved, after checking it lies inside the job folder.

        Raises:
            ValueError: ``<path> is outside the job folder <root>``.
        """
        if not self.contains(path):
            raise ValueError(f"{path} is outside the job folder {self.root}")
        return (self.root / path).resolve()


# --- sizes ------------------------------------------------------------------------------------

_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` (``X`` and spaces around the numbers allowed) → ``(1280, 720)`` pixels.

    Raises:
        ValueError: the text is not two whole numbers joined by ``x``.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"size must look like 1280x720 (expected WIDTHxHEIGHT, got {text!r})")
    return int(match.group(1)), int(match.group(2))


def format_size(width: int, height: int) -> str:
    """``(1280, 720)`` → ``"1280x720"``, the form :func:`parse_size` reads."""
    return f"{width}x{height}"


# --- events -----------------------------------------------------------------------------------


class EventError(ValueError):
    """A stdout line that is not one valid event; the message says what is wrong with it."""


class _Event(BaseModel):
    """Base of the event models: frozen, no unknown fields, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    #: Models that keep unknown wire fields in ``details`` (flattened on the wire).
    open_fields: ClassVar[bool] = False


_E = TypeVar("_E", bound=_Event)


class StageEvent(_Event):
    """A stage began (``started``), ended (``completed``, with ``duration_s`` in seconds and
    step-specific counts in ``details``) or was not needed (``skipped``, with a ``reason``)."""

    event: Literal["stage"] = "stage"
    stage: Stage
    status: Literal["started", "completed", "skipped"]
    duration_s: float | None = Field(default=None, ge=0)
    reason: str | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)
    open_fields: ClassVar[bool] = True

    @model_validator(mode="after")
    def _status_fields(self) -> StageEvent:
        if self.status == "completed" and self.duration_s is None:
            raise ValueError("a completed stage needs duration_s")
        if self.status == "skipped" and self.reason is None:
            raise ValueError("a skipped stage needs a reason")
        return self


class ProgressEvent(_Event):
    """``pct`` (0..100) of ``stage`` done. Training fills ``step``/``total`` (steps), ``loss``,
    ``gaussians``, ``eta_s`` (seconds left in the stage, ``None`` while unknown) and, in a run
    resumed from a checkpoint, ``resumed_from`` (the steps the checkpoint held); other stages
    put their counters (``frames``, ``images``, ``frame``, ``still``...) in ``details``."""

    event: Literal["progress"] = "progress"
    stage: Stage
    pct: float = Field(ge=0, le=100)
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    gaussians: int | None = None
    eta_s: float | None = None
    resumed_from: int | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)
    open_fields: ClassVar[bool] = True

    @classmethod
    def of(cls, stage: Stage, pct: float, **fields: Any) -> ProgressEvent:
        """One event from the flat keyword form ``progress(stage, pct, step=..., frame=...)``."""
        return _validate(cls, {"stage": stage, "pct": pct, **fields})


class MetricsEvent(_Event):
    """Held-out evaluation after training step ``step``: ``psnr`` (dB), ``ssim``, ``views``."""

    event: Literal["metrics"] = "metrics"
    stage: Literal["train"] = "train"
    psnr: float
    ssim: float
    views: int
    step: int | None = None


class SnapshotEvent(_Event):
    """A live training snapshot was written: ``file`` (:data:`LIVE_SPLAT`) in
    ``refined/splatter/`` holds ``gaussians`` Gaussians after training step ``step``; writing it
    took ``write_s`` seconds."""

    event: Literal["snapshot"] = "snapshot"
    stage: Literal["train"] = "train"
    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    step: int = Field(ge=0)
    gaussians: int = Field(ge=0)
    write_s: float = Field(ge=0)


class WarningEvent(_Event):
    """Something best effort failed in ``stage``; the run goes on."""

    event: Literal["warning"] = "warning"
    stage: Stage
    message: str


class DoneEvent(_Event):
    """The last line of a successful run.

    Attributes:
        outputs: output file name (:data:`EXPORT_FILES`, :data:`PREVIEW_FILES`) → path written.
        metrics: ``psnr`` (dB), ``ssim``, ``views``, ``gaussians``.
        warnings: best-effort failures (previews).
        duration_s: wall-clock seconds of the run.
    """

    event: Literal["done"] = "done"
    outputs: dict[str, str]
    metrics: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    duration_s: float = Field(ge=0)


class ErrorEvent(_Event):
    """The last line of a failed run; ``stage`` is ``None`` when no stage was running.
    ``checkpoint_step`` is the training step the last checkpoint holds when a stop request
    (SIGTERM) ended the run after saving one."""

    event: Literal["error"] = "error"
    stage: Stage | None
    message: str
    checkpoint_step: int | None = None


Event: TypeAlias = (
    StageEvent
    | ProgressEvent
    | MetricsEvent
    | SnapshotEvent
    | WarningEvent
    | DoneEvent
    | ErrorEvent
)
_MODELS: dict[str, type[Event]] = {
    "stage": StageEvent,
    "progress": ProgressEvent,
    "metrics": MetricsEvent,
    "snapshot": SnapshotEvent,
    "warning": WarningEvent,
    "done": DoneEvent,
    "error": ErrorEvent,
}


def event_dict(event: Event) -> dict[str, Any]:
    """The JSON object of ``event`` as it goes on the wire: ``details`` flattened, optional
    fields (default ``None``) only when they were given."""
    given = {
        name
        for name, info in type(event).model_fields.items()
        if name in event.model_fields_set or info.default is not None
    }
    data = event.model_dump(mode="json", include=given - {"event", "details"})
    details = event.details if isinstance(event, StageEvent | ProgressEvent) else {}
    return {"event": event.event, **data, **details}


def encode_event(event: Event) -> str:
    """One JSON line (without its newline) for ``event``.

    Raises:
        ValueError: a value is not finite (JSON has no NaN).
    """
    return json.dumps(event_dict(event), allow_nan=False)


def parse_event(line: str) -> Event:
    """The event of one stdout line.

    Raises:
        EventError: the line is not JSON, not an object, has no known ``event`` kind, or its
            fields do not fit that kind (the message names the field).
    """
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise EventError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EventError(f"not a JSON object: {type(value).__name__}")
    return event_from_dict(value)


def event_from_dict(value: Mapping[str, Any]) -> Event:
    """The event of one decoded JSON object (see :func:`parse_event`)."""
    kind = value.get("event")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise EventError(f"unknown event kind {kind!r}; expected one of {sorted(_MODELS)}")
    return _validate(model, dict(value))


def _validate(model: type[_E], data: dict[str, Any]) -> _E:
    if model.open_fields:
        known = {k: v for k, v in data.items() if k in model.model_fields and k != "details"}
        details = {k: v for k, v in data.items() if k not in model.model_fields}
        data = {**known, "details": details} if details else known
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        kind = data.get("event", model.model_fields["event"].default)
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise EventError(f"bad {kind!r} event: {problems}") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    return f"{'.'.join(map(str, loc))}: {message}" if loc else message
