"""Training checkpoints: write time, file size and read time at 20,000 and 200,000 Gaussians.

A checkpoint is what a SIGTERM writes before the pipeline exits (:mod:`pipeline.stop`), so its
write time must fit well inside ``CANCEL_GRACE_SECS`` (compose: 20 s). Each size uses SH
degree 3 (16 coefficients per channel, as a finished reference run), Adam moments from one step
on random gradients, zero densification statistics; written with
:func:`pipeline.train.checkpoint.save_checkpoint` (temporary file, fsync, rename) into a
temporary folder on the disk ``TMPDIR`` names. Best of 3 after one warm-up.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from bench.table import BenchRow, BenchTable, best_of
from pipeline.splats import Splats
from pipeline.train import TrainConfig
from pipeline.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from pipeline.train.optim import make_optimizers
from pipeline.train.params import PARAM_NAMES, params_from_splats
from pipeline.train.strategy import DensifyState

SIZES = (20_000, 200_000)
#: SIGTERM → SIGKILL grace of the compose file: the write must fit well inside it.
GRACE_S = 20.0


def run(table: BenchTable) -> None:
    config = TrainConfig.reference()
    for n in SIZES:
        with tempfile.TemporaryDirectory(prefix="bench_checkpoint_") as tmp:
            write_s, size_mb, read_s = _measure(Path(tmp), _state(n, config), config)
        label = f"checkpoint {n // 1000}k Gaussians SH3"
        table.add(BenchRow(f"{label} write", write_s, "s", target=GRACE_S / 4, note="fsync"))
        table.add(BenchRow(f"{label} size", size_mb, "MB"))
        table.add(BenchRow(f"{label} read", read_s, "s"))


def _measure(folder: Path, state: TrainingState, config: TrainConfig) -> tuple[float, float, float]:
    """(write seconds, size in MB, read seconds) of one checkpoint of ``state``."""
    write_s = best_of(lambda: save_checkpoint(folder, state, config), repeats=3)
    (path,) = folder.iterdir()
    read_s = best_of(lambda: load_checkpoint(path, config, torch.device("cpu")), repeats=3)
    return write_s, path.stat().st_size / 1e6, read_s


def _state(n: int, config: TrainConfig) -> TrainingState:
    """``n`` random Gaussians with Adam moments, as training holds them."""
    g = torch.Generator().manual_seed(n)
    splats = Splats(
        means=torch.rand(n, 3, generator=g) * 2.0 - 1.0,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.rand(n, 3, generator=g) * 2.0 - 4.0,
        logit_opacities=torch.randn(n, generator=g),
        sh=torch.randn(n, 16, 3, generator=g) * 0.5,
    )
    params = params_from_splats(splats)
    optimizers = make_optimizers(params, config.lr)
    for name in PARAM_NAMES:
        params[name].grad = torch.randn(params[name].shape, generator=g)
        optimizers[name].step()
    return TrainingState(
        step=1000,
        params=params,
        optimizers=optimizers,
        densify=DensifyState.zeros(n),
        generator=torch.Generator().manual_seed(0),
        elapsed_s=12.5,
    )
