"""Graceful stop and resume of a pipeline run: SIGTERM finishes the step in hand and writes a
checkpoint; the checkpoint cadence bounds the work a kill loses; a resumed run says where it
resumed from in every progress event."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.cli import main
from pipeline.render import get_rasterizer
from pipeline.stop import EXIT_TERMINATED, GracefulStop, StopRequested
from pipeline.train import TrainConfig, train
from pipeline.train import checkpoint as checkpoints
from tests.pipeline.commands.test_run_command import finish, run_child
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.pipeline.train.factories import tiny_scene
from tests.support.progress import RecordingProgress


def small_config(steps: int, **fields: Any) -> TrainConfig:
    """The CPU profile at ``steps``, few Gaussians (the dense renderer is slow)."""
    config = TrainConfig.cpu(steps=steps)
    capped = replace(config, densify=replace(config.densify, max_gaussians=250))
    return replace(capped, **fields)


class StopAfter:
    """``should_stop`` that says yes once ``steps`` progress events have been seen."""

    def __init__(self, progress: RecordingProgress, steps: int) -> None:
        self.progress, self.steps = progress, steps

    def __call__(self) -> bool:
        done = sum(e["event"] == "progress" for e in self.progress.events)
        return bool(done >= self.steps)


# --- the SIGTERM handler ---


def test_outside_training_sigterm_stops_at_once() -> None:
    stop = GracefulStop()
    with pytest.raises(StopRequested) as raised:
        stop.handle(signal.SIGTERM, None)
    assert stop.requested and raised.value.checkpoint_step is None
    assert str(raised.value) == "terminated by SIGTERM"


def test_inside_deferred_sigterm_only_sets_the_flag_and_a_late_entry_stops() -> None:
    stop = GracefulStop()
    with stop.deferred():
        stop.handle(signal.SIGTERM, None)  # must not raise here
        assert stop.should_stop()
    with pytest.raises(StopRequested), stop.deferred():
        pytest.fail("a stop requested before the region must not enter it")


def test_installed_restores_the_previous_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with GracefulStop().installed() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop.handle
    assert signal.getsignal(signal.SIGTERM) == before


# --- training under a stop request ---


def test_a_stop_mid_training_checkpoints_that_step_and_resuming_matches_a_straight_run(
    tmp_path: Path,
) -> None:
    scene = tiny_scene(width=16, height=12, point_fraction=0.5)
    config = small_config(30, checkpoint_every=1000)  # only the stop writes one mid-run
    straight = train(scene, config, get_rasterizer("cpu"))
    progress = RecordingProgress()
    with pytest.raises(StopRequested) as raised:
        train(
            scene, config, get_rasterizer("cpu"), progress,
            checkpoint_dir=tmp_path, should_stop=StopAfter(progress, 13),
        )  # fmt: skip
    assert raised.value.checkpoint_step == 13
    assert [p.name for p in tmp_path.iterdir()] == ["step-000013.pt"]
    resumed_progress = RecordingProgress()
    resumed = train(scene, config, get_rasterizer("cpu"), resumed_progress, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 13
    steps = [e["step"] for e in resumed_progress.events if e["event"] == "progress"]
    assert steps == list(range(14, 31))
    assert {e.get("resumed_from") for e in resumed_progress.events if e["event"] == "progress"} == {
        13
    }
    for x, y in zip(resumed.splats.tensors(), straight.splats.tensors(), strict=True):
        assert torch.equal(x, y)


def test_a_stop_on_a_checkpoint_step_does_not_write_it_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[int] = []
    real_save = checkpoints.save_checkpoint

    def counting_save(directory: Path, state: Any, config: TrainConfig, scene_id: str) -> Path:
        saved.append(state.step)
        return real_save(directory, state, config, scene_id)

    monkeypatch.setattr("pipeline.train.loop.save_checkpoint", counting_save)
    scene = tiny_scene(width=16, height=12, point_fraction=0.5)
    progress = RecordingProgress()
    with pytest.raises(StopRequested) as raised:
        train(
            scene, small_config(20, checkpoint_every=5), get_rasterizer("cpu"), progress,
            checkpoint_dir=tmp_path, should_stop=StopAfter(progress, 10),
        )  # fmt: skip
    assert raised.value.checkpoint_step == 10 and saved == [5, 10]


def test_without_a_checkpoint_folder_a_stop_says_nothing_was_saved() -> None:
    scene = tiny_scene(width=16, height=12, point_fraction=0.5)
    progress = RecordingProgress()
    with pytest.raises(StopRequested) as raised:
        train(
            scene, small_config(10), get_rasterizer("cpu"), progress,
            should_stop=StopAfter(progress, 3),
        )  # fmt: skip
    assert raised.value.checkpoint_step is None


def test_the_time_cadence_checkpoints_between_step_cadence_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``checkpoint_every_s``: with a clock that advances 25 s per reading (several readings
    a step) a 120 s cadence saves every two or three steps, although the step cadence alone
    would save only at the end."""
    saved: list[int] = []
    real_save = checkpoints.save_checkpoint

    def counting_save(directory: Path, state: Any, config: TrainConfig, scene_id: str) -> Path:
        saved.append(state.step)
        return real_save(directory, state, config, scene_id)

    ticks = iter(range(0, 10_000_000, 25))
    monkeypatch.setattr("pipeline.train.loop.time.perf_counter", lambda: float(next(ticks)))
    monkeypatch.setattr("pipeline.train.loop.save_checkpoint", counting_save)
    scene = tiny_scene(width=16, height=12, point_fraction=0.5)
    config = small_config(10, checkpoint_every=1000, checkpoint_every_s=120.0)
    train(scene, config, get_rasterizer("cpu"), checkpoint_dir=tmp_path)
    assert saved[-1] == 10 and len(saved) >= 3
    assert all(b - a <= 3 for a, b in zip([0, *saved], saved, strict=False))


@pytest.mark.parametrize("steps", [30_000, 7_000, 1_000, 100, 7])
def test_every_profile_checkpoints_at_least_every_tenth_of_the_run(steps: int) -> None:
    for config in (TrainConfig.for_backend("gsplat", steps), TrainConfig.for_backend("cpu", steps)):
        assert config.checkpoint_every <= max(1, steps // 10)
        assert config.checkpoint_every_s == 120.0


def test_a_non_positive_time_cadence_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_every_s must be > 0"):
        TrainConfig(checkpoint_every_s=0.0)


# --- the command: SIGTERM, exit 143, rerun resumes ---


def test_sigterm_mid_training_checkpoints_and_the_rerun_resumes_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tiny_job(tmp_path)
    common = ["--steps", "240", "--no-preview", "--threads", "1"]
    child = run_child(tmp_path, *common)
    assert child.stdout is not None
    for line in child.stdout:  # a few steps in, then SIGTERM
        event = json.loads(line)
        if event.get("stage") == "train" and event.get("step", 0) >= 3:
            break
    child.send_signal(signal.SIGTERM)
    result = finish(tmp_path, child)
    assert result.returncode == EXIT_TERMINATED, result.stderr
    last = result.events[-1]
    step = last["checkpoint_step"]
    assert last == {
        "event": "error", "stage": "train", "checkpoint_step": step,
        "message": f"terminated by SIGTERM (checkpoint at step {step})",
    }  # fmt: skip
    checkpoints = tmp_path / "refined" / "splatter" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == [f"step-{step:06d}.pt"]

    assert main(["run", "--job-root", str(tmp_path), *common[:2], "--no-preview"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames = next(e for e in events if e.get("stage") == "frames" and "written" in e)
    assert frames["written"] == 0 and frames["existing"] > 0
    train_done = next(e for e in events if e.get("stage") == "train" and "resumed_from" in e)
    assert train_done["resumed_from"] == step and 0 < step < 240
    first_progress = next(e for e in events if e["event"] == "progress" and e["stage"] == "train")
    assert first_progress["step"] == step + 1 and first_progress["resumed_from"] == step
