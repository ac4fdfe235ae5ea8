"""Steps 1–5 for one job folder: what ``python -m pipeline run`` does.

Inputs (protocol §3.4): ``datasets/<scan>/Frames.mp4`` and the COLMAP model in
``refined/global/refined_sfm_combined/``. Outputs in ``refined/splatter/``: ``splat.ply``,
``splat_rot.ply``, ``splat_rot.splat`` (required) and, best effort, ``preview.mp4``,
``preview_top.jpg``, ``preview_angle.jpg``, ``preview_camera_path.json``; training state in
``refined/splatter/checkpoints/`` and ``refined/splatter/run_state.json``.

A rerun resumes: frames already extracted are kept, training continues from its latest
checkpoint (a finished run returns at once), and export and preview are skipped when
``run_state.json`` records them done for the same trained Gaussians and their files still exist.
A resumed training run reports ``resumed_from`` (the steps its checkpoint held) in its
``progress`` events and in the train stage's ``completed`` event. With a :class:`GracefulStop`,
SIGTERM during training finishes the step, writes a checkpoint and raises
:class:`~pipeline.stop.StopRequested` (:mod:`pipeline.stop`).

Two trainers (``RunConfig.trainer``): ``builtin`` (:func:`pipeline.train.train`, the splatfacto
recipe on the chosen rasterizer) and ``nerfstudio`` (the reference's ``ns-train`` /
``ns-export``, GPU image only, :mod:`pipeline.train.nerfstudio_cli`), which needs
``refined/nerfstudio-data/transforms.json`` and trains afresh on every run; with it, ``backend``
only picks the preview renderer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from pipeline.atomic import atomic_path
from pipeline.colmap import ColmapModel, read_model
from pipeline.contract import (
    COLMAP_REQUIRED_FILES,
    SOG_FILE,
    JobLayout,
    Stage,
    StageEvent,
    WarningEvent,
)
from pipeline.dataset import DatasetConfig, build_scene
from pipeline.errors import InputError, PipelineError
from pipeline.export import ExportConfig, ExportResult, export_all
from pipeline.frames import extract_frames
from pipeline.nerfstudio import write_nerfstudio_data
from pipeline.preview import PreviewConfig, render_preview
from pipeline.progress import ProgressSink
from pipeline.render import BackendChoice, Rasterizer, get_rasterizer
from pipeline.report import ReportInputs, write_report
from pipeline.report.history import LossHistory
from pipeline.scene import SceneData
from pipeline.scene_frame import SceneFrame, frame_from_model
from pipeline.splats import Splats
from pipeline.stop import GracefulStop
from pipeline.train import TrainConfig, TrainResult, train
from pipeline.train.nerfstudio_cli import require_tools, train_with_nerfstudio
from pipeline.train.nerfstudio_images import write_downscaled_images
from pipeline.train.snapshot import DEFAULT_SNAPSHOT_SECS, SnapshotWriter

__all__ = [
    "RunConfig",
    "RunResult",
    "StageTracker",
    "TrainerChoice",
    "check_job_inputs",
    "run_job",
    "train_scene",
]

logger = logging.getLogger(__name__)

STATE_FILE = "run_state.json"

TrainerChoice = Literal["builtin", "nerfstudio"]


@dataclass(frozen=True)
class RunConfig:
    """What ``python -m pipeline run`` was asked to do.

    Attributes:
        backend: rasterizer backend; ``auto`` picks gsplat when CUDA is usable. With the
            ``nerfstudio`` trainer it only renders the previews.
        steps: training steps; ``None`` uses the backend's profile (30,000 on gsplat, the CPU
            profile's default on cpu) or, with ``nerfstudio``, splatfacto's default (30,000).
        trainer: ``builtin`` (this project's trainer) or ``nerfstudio`` (``ns-train`` and
            ``ns-export`` as the reference runs them; they must be on ``PATH``).
        seed: seeds training (deterministic on CPU).
        eval_every: ``None``: the reference's split (90 % of the images, evenly spaced, are
            trained on, the rest held out for evaluation); ``N``: hold out every Nth image;
            ``0``: hold out none (see :class:`~pipeline.dataset.DatasetConfig`).
        previews: render the preview stills and video.
        sog: also write ``splat_rot.sog`` in the export step (best effort).
        resume: continue from checkpoints and recorded steps; ``False`` starts afresh.
        preview: preview settings.
        snapshot_every_s: seconds between two live training snapshots
            (``refined/splatter/live.splat``, :mod:`pipeline.train.snapshot`); ``None`` or 0:
            none (the builtin trainer only).
        max_gaussians: caps the Gaussian count during densification; ``None`` keeps the
            profile's cap (20,000 on the CPU, none on gsplat).
    """

    backend: BackendChoice = "auto"
    steps: int | None = None
    trainer: TrainerChoice = "builtin"
    seed: int = 0
    eval_every: int | None = None
    previews: bool = True
    sog: bool = True
    resume: bool = True
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    snapshot_every_s: float | None = DEFAULT_SNAPSHOT_SECS
    max_gaussians: int | None = None


@dataclass
class RunResult:
    """A finished run.

    Attributes:
        outputs: file name → path of every output written (or kept from an earlier run).
        metrics: held-out ``psnr`` (dB), ``ssim``, ``views``; plus ``gaussians``.
        warnings: best-effort failures (previews, the SOG).
        duration_s: wall-clock seconds.
        trained: the builtin trainer's result (``None`` with the nerfstudio trainer).
        train_config: the recipe it trained with (``None`` with the nerfstudio trainer).
        inputs: what the input was (layout, images, points, registered fraction, ...).
    """

    outputs: dict[str, Path]
    metrics: dict[str, float]
    warnings: list[str]
    duration_s: float
    trained: TrainResult | None = None
    train_config: TrainConfig | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


class StageTracker:
    """Emits ``stage`` events and remembers which stage is running (for the error event)."""

    def __init__(self, progress: ProgressSink) -> None:
        self.progress = progress
        self.current: Stage | None = None

    @contextmanager
    def stage(self, name: Stage) -> Iterator[dict[str, Any]]:
        """Runs one stage; fields put into the yielded dict go into its ``completed`` event."""
        self.current = name
        started = time.perf_counter()
        self.progress.emit(StageEvent(stage=name, status="started"))
        info: dict[str, Any] = {}
        yield info
        duration = round(time.perf_counter() - started, 3)
        self.progress.emit(
            StageEvent(stage=name, status="completed", duration_s=duration, details=info)
        )
        self.current = None

    def skipped(self, name: Stage, reason: str) -> None:
        self.progress.emit(StageEvent(stage=name, status="skipped", reason=reason))


def run_job(
    job_root: Path,
    config: RunConfig,
    progress: ProgressSink,
    tracker: StageTracker | None = None,
    stop: GracefulStop | None = None,
) -> RunResult:
    """Run every step on ``job_root``.

    Args:
        stop: the run's SIGTERM handler (installed by the caller); ``None``: training is
            never asked to stop.

    Raises:
        PipelineError: a required step failed (bad inputs, training diverged, export failed).
        StopRequested: ``stop`` fired (training checkpointed first).
    """
    started = time.perf_counter()
    tracker = tracker or StageTracker(progress)
    stop = stop or GracefulStop()
    layout = JobLayout(job_root)
    _check_inputs(layout)
    rasterizer = get_rasterizer(config.backend)
    if config.trainer == "builtin":
        scene = _prepare(layout, _train_config(rasterizer, config), config, tracker)
        images = len(scene.train) + len(scene.eval)
        inputs = {"layout": "auki", "source": str(job_root), "images": images}
        inputs["points"] = len(scene.points)
        result = train_scene(scene, layout.splatter_dir, config, tracker, inputs, stop)
        result.duration_s = time.perf_counter() - started
        return result
    state = _RunState.load(layout.splatter_dir / STATE_FILE, enabled=config.resume)
    frame = _prepare_nerfstudio(layout, tracker)
    trained = _train_nerfstudio(layout, config, tracker)
    fingerprint = _fingerprint(trained.splats, config.trainer)
    outputs, warnings = _export_and_preview(
        trained.splats, frame, rasterizer, layout.splatter_dir, config, state, fingerprint, tracker
    )
    metrics = {**trained.metrics, "gaussians": float(len(trained.splats))}
    return RunResult(outputs, metrics, warnings, time.perf_counter() - started)


def train_scene(
    scene: SceneData,
    out_dir: Path,
    config: RunConfig,
    tracker: StageTracker,
    inputs: dict[str, Any] | None = None,
    stop: GracefulStop | None = None,
) -> RunResult:
    """Steps 3–5 and the report with the builtin trainer on a prepared scene: train
    (checkpoints in ``out_dir/checkpoints``), export, preview and report into ``out_dir``;
    ``run_state.json`` there lets a rerun skip what is done. Every capture layout ends here
    (``python -m pipeline train``), the job layout too.

    Raises:
        PipelineError: training diverged or export failed.
        StopRequested: ``stop`` fired (training checkpointed first).
    """
    started = time.perf_counter()
    stop = stop or GracefulStop()
    rasterizer = get_rasterizer(config.backend)
    train_config = _train_config(rasterizer, config)
    state = _RunState.load(out_dir / STATE_FILE, enabled=config.resume)
    history = LossHistory(tracker.progress)
    checkpoints = out_dir / "checkpoints"
    trained = _train(scene, train_config, rasterizer, checkpoints, config, tracker, history, stop)
    fingerprint = _fingerprint(trained.splats, config.trainer)
    outputs, warnings = _export_and_preview(
        trained.splats, scene.frame, rasterizer, out_dir, config, state, fingerprint, tracker
    )
    report = ReportInputs(scene, trained, train_config, rasterizer, dict(inputs or {}))
    report.loss, report.outputs = history.points, outputs
    report_files, report_warnings = _report(report, out_dir, tracker)
    outputs, warnings = {**outputs, **report_files}, warnings + report_warnings
    metrics = {**trained.metrics, "gaussians": float(len(trained.splats))}
    duration = time.perf_counter() - started
    return RunResult(
        outputs, metrics, warnings, duration, trained, train_config, dict(inputs or {})
    )


def check_job_inputs(job_root: Path) -> JobLayout:
    """The layout of an Auki job folder whose recordings and model files are all there.

    Raises:
        InputError: no recordings, or a model file is missing (named).
    """
    layout = JobLayout(job_root)
    _check_inputs(layout)
    return layout


def _check_inputs(layout: JobLayout) -> None:
    """Fail early, naming what is missing, before any heavy work."""
    if not layout.scans():
        raise InputError(f"no recordings: {layout.datasets_dir} has no <scan>/Frames.mp4 folders")
    missing = [n for n in COLMAP_REQUIRED_FILES if not (layout.model_dir / n).is_file()]
    if missing:
        raise InputError(f"COLMAP model incomplete in {layout.model_dir}: missing {missing}")


def _train_config(rasterizer: Rasterizer, config: RunConfig) -> TrainConfig:
    base = TrainConfig.for_backend(rasterizer.name, config.steps)
    recipe = {**base.to_dict(), "seed": config.seed}
    if config.max_gaussians is not None:
        recipe["densify"] = {**recipe["densify"], "max_gaussians": config.max_gaussians}
    return TrainConfig.from_dict(recipe)


def _prepare(
    layout: JobLayout, train_config: TrainConfig, config: RunConfig, tracker: StageTracker
) -> SceneData:
    """Steps 1–2: frames from the recordings, then undistorted training views."""
    model = _model_and_frames(layout, tracker)
    with tracker.stage("dataset") as info:
        dataset_config = DatasetConfig(
            max_side=train_config.max_image_side, eval_every=config.eval_every
        )
        scene = build_scene(model, layout.frames_dir, dataset_config, tracker.progress)
        info.update(train_views=len(scene.train), eval_views=len(scene.eval))
        info.update(points=int(scene.points.shape[0]), up_rule=scene.frame.rule)
        _write_nerfstudio_best_effort(layout, model, scene.frame, tracker)
    return scene


def _model_and_frames(layout: JobLayout, tracker: StageTracker) -> ColmapModel:
    """Reads the COLMAP model, then step 1: extracts the frames its images name."""
    model = read_model(layout.model_dir)
    names = [image.name for image in model.images.values()]
    with tracker.stage("frames") as info:
        frames = extract_frames(layout.root, image_names=names, progress=tracker.progress)
        info.update(written=frames.total_written, existing=frames.existing)
    return model


def _prepare_nerfstudio(layout: JobLayout, tracker: StageTracker) -> SceneFrame:
    """Steps 1–2 for ``ns-train``: frames, then ``transforms.json`` (required here) and the
    downscaled copies nerfstudio picks its resolution from; returns the scene frame in the
    COLMAP frame (images are not loaded here: nerfstudio does)."""
    require_tools()  # missing on CPU installs: say so before any heavy work
    model = _model_and_frames(layout, tracker)
    names = [image.name for image in model.images.values()]
    with tracker.stage("dataset") as info:
        frame = frame_from_model(model)
        transforms = write_nerfstudio_data(layout.root, model, frame)
        factor = write_downscaled_images(layout.nerfstudio_dir)
        info.update(transforms=str(transforms), views=len(names), downscale=factor)
        info.update(points=len(model.points3d), up_rule=frame.rule)
    return frame


def _train_nerfstudio(layout: JobLayout, config: RunConfig, tracker: StageTracker) -> TrainResult:
    with tracker.stage("train") as info:
        result = train_with_nerfstudio(layout, config.steps, tracker.progress)
        info.update(steps=result.steps, gaussians=len(result.splats), trainer="nerfstudio")
    return result


def _write_nerfstudio_best_effort(
    layout: JobLayout, model: ColmapModel, frame: SceneFrame, tracker: StageTracker
) -> None:
    """``transforms.json`` is for users' own nerfstudio runs; the job does not need it."""
    try:
        write_nerfstudio_data(layout.root, model, frame)
    except PipelineError as exc:
        message = f"nerfstudio transforms.json not written: {exc}"
        logger.warning(message)
        tracker.progress.emit(WarningEvent(stage="dataset", message=message))


def _train(
    scene: SceneData,
    train_config: TrainConfig,
    rasterizer: Rasterizer,
    checkpoint_dir: Path,
    config: RunConfig,
    tracker: StageTracker,
    progress: ProgressSink,
    stop: GracefulStop,
) -> TrainResult:
    with tracker.stage("train") as info, stop.deferred():
        result = train(
            scene,
            train_config,
            rasterizer,
            progress,
            checkpoint_dir=checkpoint_dir,
            resume=config.resume,
            should_stop=stop.should_stop,
            snapshots=_snapshot_writer(scene, checkpoint_dir.parent, config, progress),
        )
        info.update(steps=result.steps, gaussians=len(result.splats), backend=rasterizer.name)
        info.update(resumed_from=result.resumed_from, metrics=result.metrics)
    return result


def _snapshot_writer(
    scene: SceneData, out_dir: Path, config: RunConfig, progress: ProgressSink
) -> SnapshotWriter | None:
    """The live snapshot writer (``<out_dir>/live.splat``, beside the outputs), unless off."""
    if not config.snapshot_every_s:
        return None
    return SnapshotWriter(out_dir, config.snapshot_every_s, scene.frame.up, progress)


def _report(
    report: ReportInputs, out_dir: Path, tracker: StageTracker
) -> tuple[dict[str, Path], list[str]]:
    """The quality report, best effort: a failure is a warning, never a failed run."""
    with tracker.stage("report") as info:
        try:
            files = write_report(out_dir, report)
        except Exception as exc:  # a report must never cost the user the splat
            logger.exception("quality report failed")
            message = f"quality report not written: {type(exc).__name__}: {exc}"
            tracker.progress.emit(WarningEvent(stage="report", message=message))
            info.update(written=False)
            return {}, [message]
        info.update(written=True, files=sorted(files))
    return files, []


def _export_and_preview(
    splats: Splats,
    frame: SceneFrame,
    rasterizer: Rasterizer,
    out_dir: Path,
    config: RunConfig,
    state: _RunState,
    fingerprint: str,
    tracker: StageTracker,
) -> tuple[dict[str, Path], list[str]]:
    """Steps 4–5; both are skipped when the state file says they are done for these Gaussians
    (the preview renders what export computes, so a preview to redo redoes the export too)."""
    exported_before = state.outputs_if_done("export", fingerprint)
    if exported_before is not None and config.sog and SOG_FILE not in exported_before:
        exported_before = None  # done before without the SOG it now needs
    previewed_before = state.outputs_if_done("preview", fingerprint) if config.previews else {}
    if exported_before is not None and previewed_before is not None:
        for stage in ("export", "preview"):
            tracker.skipped(stage, "already done for these Gaussians")
        return {**exported_before, **previewed_before}, []
    with tracker.stage("export") as info:
        export_config = ExportConfig() if config.sog else ExportConfig(rotated_sog=None)
        exported = export_all(splats, out_dir, up=frame, config=export_config)
        info.update(gaussians=exported.count, dropped_transparent=exported.dropped_transparent)
        info.update(dropped_non_finite=exported.dropped_non_finite)
    outputs = {name: Path(path) for name, path in exported.outputs().items()}
    state.record("export", fingerprint, outputs)
    if not config.previews:
        tracker.skipped("preview", "previews disabled")
        return outputs, exported.warnings
    preview_outputs, warnings = _preview(exported, rasterizer, out_dir, config, tracker)
    if not warnings:
        state.record("preview", fingerprint, preview_outputs)
    return {**outputs, **preview_outputs}, [*exported.warnings, *warnings]


def _preview(
    exported: ExportResult,
    rasterizer: Rasterizer,
    out_dir: Path,
    config: RunConfig,
    tracker: StageTracker,
) -> tuple[dict[str, Path], list[str]]:
    """Step 5, best effort: failures come back as warnings, never as exceptions."""
    with tracker.stage("preview") as info:
        result = render_preview(
            exported.nerfstudio_splats,
            exported.nerfstudio_frame or exported.nerfstudio_up,
            rasterizer,
            out_dir,
            config.preview,
            tracker.progress,
        )
        info.update(files=sorted(result.outputs), warnings=len(result.warnings))
        info.update(frames=result.frames_rendered, render_s=round(result.render_s, 3))
    return dict(result.outputs), result.warnings


def _fingerprint(splats: Splats, trainer: TrainerChoice) -> str:
    """Identifies one set of trained Gaussians and who trained them (SHA-1 of the trainer's
    name and every parameter's bytes)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(trainer.encode())
    for tensor in splats.tensors():
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class _RunState:
    """``run_state.json``: which of the last two steps are done, for which Gaussians."""

    path: Path
    steps: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path, enabled: bool) -> _RunState:
        if not enabled or not path.is_file():
            return cls(path, {})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, dict(data["steps"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable %s: %s", path, exc)
            return cls(path, {})

    def outputs_if_done(self, step: str, fingerprint: str) -> dict[str, Path] | None:
        record = self.steps.get(step)
        if not record or record.get("fingerprint") != fingerprint:
            return None
        outputs = {name: Path(p) for name, p in record.get("outputs", {}).items()}
        if not outputs or not all(p.is_file() for p in outputs.values()):
            return None
        return outputs

    def record(self, step: str, fingerprint: str, outputs: dict[str, Path]) -> None:
        self.steps[step] = {
            "fingerprint": fingerprint,
            "outputs": {name: str(p) for name, p in outputs.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"version": 1, "steps": self.steps}, indent=2), "utf-8")
