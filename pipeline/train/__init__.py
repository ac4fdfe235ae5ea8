"""Trainer: the splatfacto recipe (nerfstudio 1.1.5 + gsplat DefaultStrategy) on any backend.

Modules: :mod:`~pipeline.train.config` (recipe and profiles), :mod:`~.initialize` (seed
Gaussians), :mod:`~.loss` (L1, SSIM, PSNR), :mod:`~.optim` and :mod:`~.schedules` (Adam groups,
learning-rate, resolution and SH schedules), :mod:`~.strategy` (densification),
:mod:`~.checkpoint` (full-state resume), :mod:`~.evaluate` (held-out metrics),
:mod:`~.loop` (:func:`train`).
"""

from pipeline.train.config import DensifyConfig, LearningRates, TrainConfig
from pipeline.train.loop import TrainResult, train

__all__ = ["DensifyConfig", "LearningRates", "TrainConfig", "TrainResult", "train"]
