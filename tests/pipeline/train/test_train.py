"""End-to-end training on tiny synthetic scenes with the real CPU rasterizer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.contract import Event, Stage, event_dict
from pipeline.errors import InputError, TrainingError
from pipeline.render import get_rasterizer
from pipeline.render.types import BackendName, Camera, Gaussians, RenderOutput, RenderSettings
from pipeline.scene import SceneData
from pipeline.train import TrainConfig, TrainResult, train
from pipeline.train.evaluate import evaluate
from pipeline.train.initialize import initial_splats
from pipeline.train.views import ViewSet
from tests.pipeline.train.factories import tiny_scene


class KilledError(Exception):
    """Stands for the process dying mid-run."""


class RecordingProgress:
    """Keeps every event; optionally raises after a given step, like a killed process."""

    def __init__(self, kill_after_step: int | None = None) -> None:
        self.kill_after_step = kill_after_step
        self.progress_events: list[dict[str, Any]] = []
        self.other_events: list[dict[str, Any]] = []

    def emit(self, event: Event) -> None:
        self.other_events.append(event_dict(event))

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        self.progress_events.append({"stage": stage, "pct": pct, **fields})
        if fields["step"] == self.kill_after_step:
            raise KilledError


class NanAfterStep:
    """The dense backend, but every render from the given call on comes out NaN."""

    name: BackendName = "cpu"

    def __init__(self, bad_from_call: int) -> None:
        self.inner = get_rasterizer("cpu")
        self.calls = 0
        self.bad_from_call = bad_from_call

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        self.calls += 1
        out = self.inner.render(gaussians, camera, settings)
        if self.calls >= self.bad_from_call:
            out.rgb = out.rgb * float("nan")
        return out


@pytest.fixture(scope="module")
def sparse_scene() -> SceneData:
    """32×24 views, 12 to train and 3 held out, SfM points for a fifth of the true Gaussians."""
    return tiny_scene(point_fraction=0.2)


def short_config(steps: int, **densify: Any) -> TrainConfig:
    """The CPU profile at ``steps`` with the Gaussian count capped for the dense renderer."""
    config = TrainConfig.cpu(steps=steps)
    return replace(config, densify=replace(config.densify, max_gaussians=250, **densify))


def heldout_quality_at_start(scene: SceneData, config: TrainConfig) -> tuple[float, float]:
    start = initial_splats(scene, config, torch.Generator().manual_seed(config.seed))
    views = ViewSet(scene.eval, 1, torch.device("cpu"))
    metrics = evaluate(start.activated(), views, get_rasterizer("cpu"), sh_degree=0)
    assert metrics is not None
    return metrics.psnr, metrics.ssim


def test_training_lifts_heldout_quality_far_above_the_initialisation(
    sparse_scene: SceneData,
) -> None:
    # Seeds 0-3 of this run end at 22.0-23.0 dB and SSIM 0.56-0.67 from 15.4 dB / 0.13; the
    # same run without densification stalls at 21.3 dB / 0.44, a sign error or a dead
    # optimiser stays at or below the start.
    # Without the profile's top-up of empty view cells, which starts close to the images already
    # (18.3 dB here): this test is about what the optimiser and densification lift.
    config = replace(short_config(300), fill_uncovered_points=0)
    psnr_start, ssim_start = heldout_quality_at_start(sparse_scene, config)
    result = train(sparse_scene, config, get_rasterizer("cpu"))
    assert psnr_start < 16.5 and ssim_start < 0.2
    assert result.metrics["psnr"] > psnr_start + 6.0
    assert result.metrics["ssim"] > 0.52
    assert result.metrics["views"] == 3
    assert len(result.splats) > 3 * len(sparse_scene.points)


def assert_same_splats(a: TrainResult, b: TrainResult) -> None:
    for x, y in zip(a.splats.tensors(), b.splats.tensors(), strict=True):
        assert torch.equal(x, y)


def resume_config() -> TrainConfig:
    """60 steps with refinements at 20 and 40 and opacity resets at 25 and 50."""
    return short_config(60, refine_every=10, refine_stop_iter=60, reset_every=25)


def test_killed_run_resumes_to_the_parameters_of_an_uninterrupted_one(tmp_path: Path) -> None:
    scene = tiny_scene(width=24, height=18, point_fraction=0.5)
    config = replace(resume_config(), checkpoint_every=10)
    straight = train(scene, config, get_rasterizer("cpu"))
    killed = RecordingProgress(kill_after_step=35)
    with pytest.raises(KilledError):
        train(scene, config, get_rasterizer("cpu"), killed, checkpoint_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["step-000030.pt"]
    resumed = train(scene, config, get_rasterizer("cpu"), checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 30 and resumed.steps == 60
    assert_same_splats(resumed, straight)
    assert resumed.metrics == straight.metrics
    assert [p.name for p in tmp_path.iterdir()] == ["step-000060.pt"]


def test_finished_run_resumes_without_training_and_resume_false_starts_afresh(
    tmp_path: Path,
) -> None:
    scene = tiny_scene(width=16, height=12, point_fraction=0.5)
    config = short_config(12)
    first = train(scene, config, get_rasterizer("cpu"), checkpoint_dir=tmp_path)
    progress = RecordingProgress()
    again = train(scene, config, get_rasterizer("cpu"), progress, checkpoint_dir=tmp_path)
    assert again.resumed_from == 12 and not progress.progress_events
    assert_same_splats(again, first)
    fresh = train(scene, config, get_rasterizer("cpu"), checkpoint_dir=tmp_path, resume=False)
    assert fresh.resumed_from is None
    assert_same_splats(fresh, first)


def test_progress_and_metrics_events(sparse_scene: SceneData) -> None:
    config = replace(short_config(20), eval_every=10)
    progress = RecordingProgress()
    result = train(sparse_scene, config, get_rasterizer("cpu"), progress)
    events = progress.progress_events
    assert [e["step"] for e in events] == list(range(1, 21))
    assert events[-1]["pct"] == 100.0 and events[-1]["eta_s"] == 0.0
    assert all(e["stage"] == "train" and e["total"] == 20 for e in events)
    assert all(e["loss"] > 0 and e["gaussians"] > 0 and e["eta_s"] >= 0 for e in events)
    metrics = progress.other_events
    assert [(m["event"], m["stage"], m["step"], m["views"]) for m in metrics] == [
        ("metrics", "train", 10, 3),
        ("metrics", "train", 20, 3),
    ]
    assert metrics[-1]["psnr"] == result.metrics["psnr"]
    assert result.steps == 20 and result.duration_s > 0 and result.resumed_from is None
    assert result.splats.means.device.type == "cpu" and not result.splats.means.requires_grad


def test_without_heldout_views_there_are_no_metrics(sparse_scene: SceneData) -> None:
    progress = RecordingProgress()
    result = train(replace(sparse_scene, eval=[]), short_config(3), get_rasterizer("cpu"), progress)
    assert result.metrics == {} and not progress.other_events


def test_a_non_finite_loss_stops_training_naming_the_step(sparse_scene: SceneData) -> None:
    with pytest.raises(TrainingError, match=r"training diverged at step 4 of 10: loss is nan"):
        train(sparse_scene, short_config(10), NanAfterStep(bad_from_call=4))


def test_pruning_every_gaussian_stops_training(sparse_scene: SceneData) -> None:
    config = short_config(30, prune_opa=0.4, refine_every=10, pause_refine_after_reset=0)
    with pytest.raises(
        TrainingError, match=r"no Gaussians left after pruning \d+ at step 11 of 30"
    ):
        train(sparse_scene, config, get_rasterizer("cpu"))


def test_a_scene_without_training_views_is_rejected(sparse_scene: SceneData) -> None:
    with pytest.raises(InputError, match="the scene has no training views"):
        train(replace(sparse_scene, train=[]), short_config(5), get_rasterizer("cpu"))
