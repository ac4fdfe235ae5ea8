"""One Adam per parameter group, and row surgery that keeps Adam's moments with their rows.

Densification replaces a parameter tensor by a new one with rows kept, added or dropped; the
optimiser's moments (``exp_avg``, ``exp_avg_sq``) must follow the same rows, and new rows start
from zero moments (gsplat's convention). Adam's ``step`` counter is per group and is kept.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from pipeline.train.config import LearningRates, TrainConfig
from pipeline.train.params import PARAM_NAMES, ParamName, Params
from pipeline.train.schedules import means_lr_at

__all__ = [
    "Optimizers",
    "initial_lr",
    "make_optimizers",
    "replace_rows",
    "set_learning_rates",
    "zero_moments",
]

Optimizers = dict[ParamName, torch.optim.Adam]


def initial_lr(lr: LearningRates, name: ParamName) -> float:
    """The learning rate a group starts with."""
    rates: dict[ParamName, float] = {
        "means": lr.means,
        "quats": lr.quats,
        "log_scales": lr.scales,
        "logit_opacities": lr.opacities,
        "sh_dc": lr.sh_dc,
        "sh_rest": lr.sh_rest,
    }
    return rates[name]


def make_optimizers(params: Params, lr: LearningRates) -> Optimizers:
    """A fresh Adam (``eps = lr.eps``) for each parameter group."""
    return {
        name: torch.optim.Adam([params[name]], lr=initial_lr(lr, name), eps=lr.eps)
        for name in PARAM_NAMES
    }


def set_learning_rates(optimizers: Optimizers, config: TrainConfig, step: int) -> None:
    """Apply the schedules for ``step`` (only the means decay; the others are constant)."""
    for group in optimizers["means"].param_groups:
        group["lr"] = means_lr_at(config, step)


@torch.no_grad()
def replace_rows(
    params: Params, optimizers: Optimizers, keep: Tensor, new_rows: dict[ParamName, Tensor]
) -> None:
    """Rebuild every group as ``cat(param[keep], new_rows[name])``, in place in both dicts.

    Args:
        keep: ``[M]`` int64 indices of the rows that stay, in their new order.
        new_rows: for every group, ``[A, ...]`` rows appended after the kept ones (same ``A``
            for all); their Adam moments start at zero.
    """
    for name in PARAM_NAMES:
        old = params[name]
        added = new_rows[name].to(dtype=old.dtype)
        new = Parameter(torch.cat([old.detach()[keep], added]), requires_grad=old.requires_grad)
        optimizer = optimizers[name]
        state = optimizer.state.pop(old, {})
        for key, value in state.items():
            if key != "step":
                state[key] = torch.cat([value[keep], torch.zeros_like(added)])
        optimizer.param_groups[0]["params"] = [new]
        if state:
            optimizer.state[new] = state
        params[name] = new


@torch.no_grad()
def zero_moments(optimizers: Optimizers, name: ParamName) -> None:
    """Forget Adam's moments of one group (after its values were reset)."""
    for state in optimizers[name].state.values():
        for key, value in state.items():
            if key != "step":
                value.zero_()
