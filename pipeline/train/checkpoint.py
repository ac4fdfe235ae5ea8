"""Full-state training checkpoints: enough to continue a killed run exactly where it stopped.

A checkpoint holds the parameters, every Adam state, the densification statistics, the number
of steps done, the random generator's state, the config and the training time so far. Files
are named ``step-<steps done, 6 digits>.pt`` and written atomically (temporary file, fsync,
rename); once a newer one is in place the older ones are deleted, so a directory holds the
latest checkpoint only (as nerfstudio keeps only its latest).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import Parameter

from pipeline.errors import CheckpointError
from pipeline.train.config import TrainConfig
from pipeline.train.optim import Optimizers, make_optimizers
from pipeline.train.params import PARAM_NAMES, Params
from pipeline.train.strategy import DensifyState

__all__ = [
    "TrainingState",
    "clear_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 1
_PAYLOAD_KEYS = (
    "step", "config", "scene_id", "params", "optimizers", "densify", "generator", "elapsed_s",
)  # fmt: skip
_NAME = re.compile(r"^step-(\d+)\.pt$")
# Fields that do not change what a run computes; a resumed run may change them.
_FREE_FIELDS = frozenset({"checkpoint_every", "checkpoint_every_s", "eval_every"})


@dataclass
class TrainingState:
    """Everything a run carries from one step to the next.

    Attributes:
        step: optimisation steps done (the next step to run, 0-based).
        params: the parameters (on the training device).
        optimizers: their Adam optimisers.
        densify: densification statistics.
        generator: the CPU generator for backgrounds and split samples.
        elapsed_s: seconds of training so far, over all sessions of this run.
    """

    step: int
    params: Params
    optimizers: Optimizers
    densify: DensifyState
    generator: torch.Generator
    elapsed_s: float = 0.0


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:06d}.pt"


def save_checkpoint(
    directory: Path, state: TrainingState, config: TrainConfig, scene_id: str = ""
) -> Path:
    """Write ``state`` atomically into ``directory`` and delete older checkpoints there.

    ``scene_id`` identifies the scene trained on (checked again on load).
    """
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "step": state.step,
        "config": config.to_dict(),
        "scene_id": scene_id,
        "params": {name: p.detach().cpu() for name, p in state.params.items()},
        "optimizers": {name: opt.state_dict() for name, opt in state.optimizers.items()},
        "densify": state.densify.to_dict(),
        "generator": state.generator.get_state(),
        "elapsed_s": state.elapsed_s,
    }
    final = checkpoint_path(directory, state.step)
    temporary = directory / f".{final.name}.tmp"
    with temporary.open("wb") as stream:
        torch.save(payload, stream)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(final)
    _fsync_directory(directory)
    for step, path in _checkpoints(directory):
        if step != state.step:
            path.unlink(missing_ok=True)
    return final


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(_NAME.match(p.name), p) for p in directory.iterdir()]
    return sorted((int(m.group(1)), p) for m, p in found if m is not None)


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the most steps in ``directory``, or ``None``."""
    found = _checkpoints(directory)
    return found[-1][1] if found else None


def clear_checkpoints(directory: Path) -> None:
    """Delete every checkpoint (and leftover temporary file) in ``directory``."""
    for _, path in _checkpoints(directory):
        path.unlink(missing_ok=True)
    if directory.is_dir():
        for leftover in directory.glob(".step-*.pt.tmp"):
            leftover.unlink(missing_ok=True)


def load_checkpoint(
    path: Path, config: TrainConfig, device: torch.device, scene_id: str = ""
) -> TrainingState:
    """Read a checkpoint written by a run with ``config`` on ``scene_id``; tensors to ``device``.

    Raises:
        CheckpointError: the file is unreadable or incomplete, or its run used another config
            or another scene.
    """
    payload = _read(path)
    if payload["scene_id"] != scene_id:
        raise CheckpointError(
            f"checkpoint {path} was written for another scene (different views); "
            "start afresh or point to the right checkpoint directory"
        )
    _check_config(path, payload["config"], config.to_dict())
    try:
        params = {
            name: Parameter(payload["params"][name].to(device).contiguous()) for name in PARAM_NAMES
        }
        optimizers = make_optimizers(params, config.lr)
        for name in PARAM_NAMES:
            optimizers[name].load_state_dict(payload["optimizers"][name])
        generator = torch.Generator()
        generator.set_state(payload["generator"])
        densify = DensifyState.from_dict(payload["densify"], device)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or inconsistent: {exc}") from exc
    return TrainingState(
        int(payload["step"]), params, optimizers, densify, generator, float(payload["elapsed_s"])
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} is not a format-{FORMAT_VERSION} training checkpoint"
        )
    missing = set(_PAYLOAD_KEYS) - payload.keys()
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(sorted(missing))}")
    return payload


def _check_config(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    before, now = _flatten(saved), _flatten(current)
    changed = [
        f"{key} ({before.get(key)!r} → {now.get(key)!r})"
        for key in sorted(before.keys() | now.keys())
        if key not in _FREE_FIELDS and before.get(key) != now.get(key)
    ]
    if changed:
        raise CheckpointError(
            f"checkpoint {path} was written with another training config: {'; '.join(changed)}"
            " (resume with the same config, or start afresh)"
        )


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
