"""The training loop: one view per step, loss, Adam, densification, checkpoints, progress.

Order within step ``s`` (0-based), as in nerfstudio's splatfacto: pick the view, render it at
the scheduled resolution and SH degree over a random background, loss, backward, Adam step
(means learning rate for ``s``), then densification with the gradients of that render.

Checkpoints are written every ``config.checkpoint_every`` steps, whenever
``config.checkpoint_every_s`` seconds have passed since the last one, and at the end; when
``should_stop`` says so after a step, one more is written and
:class:`~pipeline.stop.StopRequested` is raised (the SIGTERM path, :mod:`pipeline.stop`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.contract import MetricsEvent
from pipeline.errors import InputError, TrainingError
from pipeline.progress import NullProgress, ProgressSink
from pipeline.render.types import EVAL_BACKGROUND, Rasterizer, RenderOutput, RenderSettings
from pipeline.scene import SceneData
from pipeline.splats import Splats
from pipeline.stop import StopRequested
from pipeline.train.checkpoint import (
    TrainingState,
    clear_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from pipeline.train.config import TrainConfig
from pipeline.train.evaluate import EvalMetrics, evaluate
from pipeline.train.initialize import initial_splats
from pipeline.train.loss import training_loss
from pipeline.train.optim import make_optimizers, set_learning_rates
from pipeline.train.params import (
    gaussians_from_params,
    num_gaussians,
    params_from_splats,
    splats_from_params,
)
from pipeline.train.schedules import resolution_divisor_at, sh_degree_at
from pipeline.train.snapshot import SnapshotWriter
from pipeline.train.strategy import DensifyState, DensifyStrategy
from pipeline.train.views import ViewOrder, ViewSet, auto_downscale

__all__ = ["TrainResult", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run hands on.

    Attributes:
        splats: the trained parameters, detached, on the CPU.
        metrics: ``psnr`` (dB), ``ssim`` and ``views`` over the held-out views; empty when the
            scene has none.
        steps: optimisation steps done (``config.steps``).
        duration_s: wall-clock seconds of this call.
        training_s: seconds of training over every session of the run (resumes included).
        resumed_from: steps already done when this call started, or ``None`` for a fresh run.
    """

    splats: Splats
    metrics: dict[str, float]
    steps: int
    duration_s: float
    training_s: float
    resumed_from: int | None


def train(
    scene: SceneData,
    config: TrainConfig,
    rasterizer: Rasterizer,
    progress: ProgressSink | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = True,
    should_stop: Callable[[], bool] | None = None,
    snapshots: SnapshotWriter | None = None,
) -> TrainResult:
    """Train Gaussians on ``scene.train`` and evaluate them on ``scene.eval``.

    Args:
        scene: views (OpenCV cameras, uint8 images) and SfM points, world frame.
        config: the recipe.
        rasterizer: the backend; parameters live on its device.
        progress: receives ``progress`` events each step (throttling is the sink's business)
            and a ``metrics`` event per evaluation.
        checkpoint_dir: where checkpoints go (``None``: none are written).
        resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one;
            ``False`` deletes existing checkpoints there and starts afresh.
        should_stop: polled after every step; once it returns True a checkpoint is written
            (when ``checkpoint_dir`` is set) and :class:`StopRequested` is raised.
        snapshots: writes the live snapshot (``live.splat``) after a step when its interval
            has passed (``None``: no snapshots).

    Raises:
        InputError: the scene has no training views or malformed images/points.
        TrainingError: the loss became non-finite or no Gaussian survived pruning.
        CheckpointError: the checkpoint to resume from is unreadable or from another run.
        StopRequested: ``should_stop`` asked for a stop (``checkpoint_step``: the steps saved).
    """
    if not scene.train:
        raise InputError("the scene has no training views")
    run = _Run(scene, config, rasterizer, progress or NullProgress(), checkpoint_dir)
    run.snapshots = snapshots
    return run.run(resume, should_stop or _never)


def _never() -> bool:
    return False


class _Run:
    """One call of :func:`train`: the fixed inputs plus the evolving :class:`TrainingState`."""

    def __init__(
        self,
        scene: SceneData,
        config: TrainConfig,
        rasterizer: Rasterizer,
        progress: ProgressSink,
        checkpoint_dir: Path | None,
    ) -> None:
        self.started = time.perf_counter()
        self.scene, self.config, self.rasterizer = scene, config, rasterizer
        self.progress, self.checkpoint_dir = progress, checkpoint_dir
        self.device = rasterizer.device
        downscale = config.downscale or auto_downscale(
            scene.train + scene.eval, config.max_image_side
        )
        self.train_views = ViewSet(scene.train, downscale, self.device)
        self.eval_views = ViewSet(scene.eval, downscale, self.device)
        self.order = ViewOrder(len(self.train_views), config.seed)
        self.strategy = DensifyStrategy(config.densify, len(self.train_views))
        self.scene_id = _scene_id(scene)
        self.saved_step: int | None = None
        self.resumed_from: int | None = None
        self.snapshots: SnapshotWriter | None = None

    def run(self, resume: bool, should_stop: Callable[[], bool]) -> TrainResult:
        state, resumed_from = self._initial_state(resume)
        self.resumed_from = resumed_from
        self.first_step, self.loop_started = state.step, time.perf_counter()
        self.last_checkpoint = self.loop_started
        last_tick = self.loop_started
        for step in range(state.step, self.config.steps):
            loss = self._step(state, step)
            state.step = step + 1
            now = time.perf_counter()
            state.elapsed_s, last_tick = state.elapsed_s + (now - last_tick), now
            self._after_step(state, loss)
            if should_stop():
                self._stop(state)
        metrics = self._evaluate(state)
        trained = splats_from_params(state.params)
        return TrainResult(
            splats=Splats(*(t.detach().cpu() for t in trained.tensors())),
            metrics=metrics.to_dict() if metrics else {},
            steps=state.step,
            duration_s=time.perf_counter() - self.started,
            training_s=state.elapsed_s,
            resumed_from=resumed_from,
        )

    def _initial_state(self, resume: bool) -> tuple[TrainingState, int | None]:
        directory = self.checkpoint_dir
        if directory is not None and resume:
            latest = latest_checkpoint(directory)
            if latest is not None:
                state = load_checkpoint(latest, self.config, self.device, self.scene_id)
                return state, state.step
        if directory is not None and not resume:
            clear_checkpoints(directory)
        generator = torch.Generator().manual_seed(self.config.seed)
        params = params_from_splats(initial_splats(self.scene, self.config, generator), self.device)
        optimizers = make_optimizers(params, self.config.lr)
        densify = DensifyState.zeros(num_gaussians(params), self.device)
        return TrainingState(0, params, optimizers, densify, generator), None

    def _step(self, state: TrainingState, step: int) -> float:
        """One optimisation step; returns the loss."""
        output, loss = self._render_loss(state, step)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(
                f"training diverged at step {step + 1} of {self.config.steps}: loss is {value}"
            )
        torch.autograd.backward(loss)
        for optimizer in state.optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        report = self.strategy.step(
            state.params, state.optimizers, state.densify, step, output, state.generator
        )
        if report.duplicated or report.split or report.pruned or report.opacity_reset:
            logger.debug(
                "step %d: %d cloned, %d split, %d pruned%s; %d Gaussians",
                step + 1, report.duplicated, report.split, report.pruned,
                ", opacities reset" if report.opacity_reset else "", num_gaussians(state.params),
            )  # fmt: skip
        if num_gaussians(state.params) == 0:
            raise TrainingError(
                f"no Gaussians left after pruning {report.pruned} at step {step + 1} "
                f"of {self.config.steps}"
            )
        return value

    def _render_loss(self, state: TrainingState, step: int) -> tuple[RenderOutput, torch.Tensor]:
        config = self.config
        camera, target = self.train_views.get(
            self.order.view_at(step), resolution_divisor_at(config, step)
        )
        background = EVAL_BACKGROUND
        if config.random_background:
            r, g, b = torch.rand(3, generator=state.generator).tolist()
            background = (r, g, b)
        set_learning_rates(state.optimizers, config, step)
        settings = RenderSettings(
            sh_degree=sh_degree_at(config, step),
            background=background,
            absgrad=config.densify.absgrad,
        )
        output = self.rasterizer.render(gaussians_from_params(state.params), camera, settings)
        if output.means2d.requires_grad:
            output.means2d.retain_grad()
        loss = training_loss(output.rgb.clamp(0.0, 1.0), target, config.ssim_lambda)
        return output, loss

    def _stop(self, state: TrainingState) -> None:
        """The stop asked for after a step: save that step (unless just saved), then unwind."""
        saved = None
        if self.checkpoint_dir is not None:
            if self.saved_step != state.step:
                self._save(state)
            saved = state.step
        raise StopRequested(saved)

    def _save(self, state: TrainingState) -> None:
        assert self.checkpoint_dir is not None
        save_checkpoint(self.checkpoint_dir, state, self.config, self.scene_id)
        self.saved_step, self.last_checkpoint = state.step, time.perf_counter()

    def _checkpoint_due(self, done: int) -> bool:
        config = self.config
        if done % config.checkpoint_every == 0 or done == config.steps:
            return True
        return time.perf_counter() - self.last_checkpoint >= config.checkpoint_every_s

    def _after_step(self, state: TrainingState, loss: float) -> None:
        """Checkpoint, evaluate, snapshot and report as the cadences ask (in that order)."""
        done, total = state.step, self.config.steps
        if self.checkpoint_dir is not None and self._checkpoint_due(done):
            self._save(state)
        every = self.config.eval_every
        if every is not None and done % every == 0 and done < total:
            self._evaluate(state)
        if self.snapshots is not None:
            self.snapshots.maybe_write(done, state.params)
        session_s = time.perf_counter() - self.loop_started
        rate = (done - self.first_step) / max(session_s, 1e-9)
        resumed = {} if self.resumed_from is None else {"resumed_from": self.resumed_from}
        self.progress.progress(
            "train",
            100.0 * done / total,
            step=done,
            total=total,
            loss=loss,
            gaussians=num_gaussians(state.params),
            eta_s=(total - done) / rate if rate > 0 else None,
            **resumed,
        )

    def _evaluate(self, state: TrainingState) -> EvalMetrics | None:
        sh_degree = sh_degree_at(self.config, state.step)
        gaussians = gaussians_from_params(state.params)
        metrics = evaluate(gaussians, self.eval_views, self.rasterizer, sh_degree)
        if metrics is not None:
            self.progress.emit(MetricsEvent(**metrics.to_dict(), step=state.step))
        return metrics


def _scene_id(scene: SceneData) -> str:
    """A fingerprint of the view split, so a checkpoint is not resumed on another scene."""
    names = "\n".join([*(v.name for v in scene.train), "--", *(v.name for v in scene.eval)])
    return hashlib.sha256(names.encode()).hexdigest()[:16]
