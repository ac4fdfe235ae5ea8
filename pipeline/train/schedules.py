"""Step-dependent quantities of the recipe: resolution, SH degree, means learning rate.

``step`` counts from 0 (the first optimisation step), as nerfstudio's trainer does.
"""

from __future__ import annotations

import math

from pipeline.train.config import TrainConfig

__all__ = ["means_lr_at", "resolution_divisor_at", "sh_degree_at"]


def resolution_divisor_at(config: TrainConfig, step: int) -> int:
    """How much smaller than the training resolution step ``step`` renders (4 → 2 → 1)."""
    return int(2 ** max(config.num_downscales - step // config.resolution_schedule, 0))


def sh_degree_at(config: TrainConfig, step: int) -> int:
    """SH degree rendered at ``step``: one more every ``sh_degree_interval`` steps."""
    return min(step // config.sh_degree_interval, config.sh_degree)


def means_lr_at(config: TrainConfig, step: int) -> float:
    """Means learning rate at ``step``: log-linear from ``lr.means`` to ``lr.means_final``.

    The decay spans the whole run (nerfstudio's ExponentialDecayScheduler without warm-up,
    ``max_steps = steps``); steps past the end hold the final rate.
    """
    t = min(max(step / config.steps, 0.0), 1.0)
    start, end = math.log(config.lr.means), math.log(config.lr.means_final)
    return math.exp(start * (1.0 - t) + end * t)
