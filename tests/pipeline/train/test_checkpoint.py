"""Checkpoint files: exact round trip, atomic latest-only writes, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.errors import CheckpointError
from pipeline.train.checkpoint import (
    TrainingState,
    clear_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from pipeline.train.config import TrainConfig
from pipeline.train.params import PARAM_NAMES
from pipeline.train.strategy import DensifyState
from tests.pipeline.train.factories import moments, params_with_moments

CPU = torch.device("cpu")


def training_state(step: int = 40) -> TrainingState:
    params, optimizers = params_with_moments(5)
    densify = DensifyState(torch.rand(5), torch.arange(5.0), torch.rand(5), "absgrad")
    generator = torch.Generator().manual_seed(11)
    torch.rand(3, generator=generator)  # advance it past its seed
    return TrainingState(step, params, optimizers, densify, generator, elapsed_s=12.5)


def test_round_trip_restores_every_piece_exactly(tmp_path: Path) -> None:
    state, config = training_state(), TrainConfig.cpu(steps=100)
    path = save_checkpoint(tmp_path, state, config, scene_id="abc")
    loaded = load_checkpoint(path, config, CPU, scene_id="abc")
    assert path.name == "step-000040.pt" and loaded.step == 40 and loaded.elapsed_s == 12.5
    for name in PARAM_NAMES:
        assert torch.equal(loaded.params[name], state.params[name])
        expected = moments(state.optimizers, state.params, name)
        restored = moments(loaded.optimizers, loaded.params, name)
        assert all(torch.equal(restored[k], expected[k]) for k in expected)
        assert loaded.optimizers[name].param_groups[0]["params"][0] is loaded.params[name]
    assert torch.equal(loaded.densify.grad2d, state.densify.grad2d)
    assert loaded.densify.gradient_source == "absgrad"
    assert torch.equal(
        torch.rand(4, generator=loaded.generator), torch.rand(4, generator=state.generator)
    )


def test_only_the_latest_checkpoint_is_kept_and_no_temporary_file_remains(tmp_path: Path) -> None:
    config = TrainConfig.cpu(steps=100)
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, training_state(step), config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000030.pt"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-000030.pt"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_clear_removes_checkpoints_and_leftovers_only(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, training_state(), TrainConfig())
    (tmp_path / ".step-000050.pt.tmp").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("keep me")
    clear_checkpoints(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_corrupt_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "step-000010.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*step-000010.pt"):
        load_checkpoint(path, TrainConfig(), CPU)


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "step-000010.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="is not a format-1 training checkpoint"):
        load_checkpoint(path, TrainConfig(), CPU)


def test_another_config_is_refused_naming_the_fields(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, training_state(), TrainConfig.cpu(steps=100))
    other = TrainConfig.cpu(steps=100, seed=3, checkpoint_every=7)  # cadence may change
    with pytest.raises(
        CheckpointError, match=r"another training config: seed \(0 → 3\) \(resume with the"
    ):
        load_checkpoint(path, other, CPU)
    loaded = load_checkpoint(path, TrainConfig.cpu(steps=100, checkpoint_every=7), CPU)
    assert loaded.step == 40


def test_another_scene_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, training_state(), TrainConfig(), scene_id="scene-a")
    with pytest.raises(CheckpointError, match="written for another scene"):
        load_checkpoint(path, TrainConfig(), CPU, scene_id="scene-b")
