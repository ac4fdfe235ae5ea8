"""Adam groups and the row surgery that keeps their moments with the Gaussians."""

from __future__ import annotations

import pytest
import torch

from pipeline.train.config import TrainConfig
from pipeline.train.optim import (
    initial_lr,
    make_optimizers,
    replace_rows,
    set_learning_rates,
    zero_moments,
)
from pipeline.train.params import PARAM_NAMES, params_from_splats
from pipeline.train.schedules import means_lr_at
from tests.pipeline.train.factories import moments, params_with_moments
from tests.support.splats import random_splats


def test_each_group_gets_its_own_adam_with_the_recipe_rates() -> None:
    params = params_from_splats(random_splats(3))
    optimizers = make_optimizers(params, TrainConfig().lr)
    rates = {name: opt.param_groups[0]["lr"] for name, opt in optimizers.items()}
    assert rates == {
        "means": 1.6e-4,
        "quats": 1e-3,
        "log_scales": 5e-3,
        "logit_opacities": 0.05,
        "sh_dc": 2.5e-3,
        "sh_rest": 1.25e-4,
    }
    assert all(opt.param_groups[0]["eps"] == 1e-15 for opt in optimizers.values())
    assert all(opt.param_groups[0]["params"][0] is params[n] for n, opt in optimizers.items())
    assert initial_lr(TrainConfig().lr, "means") == 1.6e-4


def test_only_the_means_rate_follows_the_schedule() -> None:
    config = TrainConfig()
    params = params_from_splats(random_splats(3))
    optimizers = make_optimizers(params, config.lr)
    set_learning_rates(optimizers, config, 20_000)
    assert optimizers["means"].param_groups[0]["lr"] == pytest.approx(means_lr_at(config, 20_000))
    assert optimizers["quats"].param_groups[0]["lr"] == 1e-3


def test_replace_rows_moves_moments_with_their_rows_and_zeroes_new_ones() -> None:
    params, optimizers = params_with_moments(6)
    before = {name: moments(optimizers, params, name) for name in PARAM_NAMES}
    old_values = {name: params[name].detach().clone() for name in PARAM_NAMES}
    keep = torch.tensor([4, 0, 2])
    new_rows = {name: old_values[name][[1, 1]] * 2 for name in PARAM_NAMES}
    replace_rows(params, optimizers, keep, new_rows)
    for name in PARAM_NAMES:
        assert torch.equal(
            params[name].detach(), torch.cat([old_values[name][keep], new_rows[name]])
        )
        after = moments(optimizers, params, name)
        assert torch.equal(after["step"], before[name]["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(after[key][:3], before[name][key][keep])
            assert not after[key][3:].any()
        assert optimizers[name].param_groups[0]["params"][0] is params[name]
        assert len(optimizers[name].state) == 1


def test_replace_rows_before_any_step_leaves_the_state_empty() -> None:
    params = params_from_splats(random_splats(4))
    optimizers = make_optimizers(params, TrainConfig().lr)
    replace_rows(params, optimizers, torch.tensor([0, 1]), {n: params[n][:0] for n in PARAM_NAMES})
    assert len(params["means"]) == 2 and not optimizers["means"].state


def test_zero_moments_clears_one_group_only() -> None:
    params, optimizers = params_with_moments(5)
    zero_moments(optimizers, "logit_opacities")
    opacity = moments(optimizers, params, "logit_opacities")
    assert not opacity["exp_avg"].any() and not opacity["exp_avg_sq"].any()
    assert opacity["step"] == 2
    assert moments(optimizers, params, "means")["exp_avg"].any()
