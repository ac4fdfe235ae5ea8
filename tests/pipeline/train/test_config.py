"""The recipe's defaults, the CPU profile, schedule scaling and config validation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.train.config import DensifyConfig, LearningRates, TrainConfig
from pipeline.train.schedules import means_lr_at, resolution_divisor_at, sh_degree_at


def test_defaults_are_the_splatfacto_reference() -> None:
    c = TrainConfig.reference()
    assert (c.steps, c.sh_degree, c.sh_degree_interval, c.ssim_lambda) == (30_000, 3, 1000, 0.2)
    assert (c.num_downscales, c.resolution_schedule, c.max_image_side) == (2, 3000, 1600)
    assert c.init_opacity == 0.1 and c.random_background
    assert c.lr == LearningRates(1.6e-4, 1.6e-6, 2.5e-3, 1.25e-4, 0.05, 5e-3, 1e-3, 1e-15)
    d = c.densify
    assert (d.prune_opa, d.grow_grad2d, d.grow_scale3d, d.grow_scale2d) == (0.1, 8e-4, 0.01, 0.05)
    assert (d.prune_scale3d, d.prune_scale2d, d.refine_scale2d_stop_iter) == (0.5, 0.15, 4000)
    assert (d.refine_start_iter, d.refine_stop_iter, d.reset_every, d.refine_every) == (
        500,
        15_000,
        3000,
        100,
    )
    assert d.absgrad and d.scene_scale == 1.0 and d.max_gaussians is None
    assert d.pause_after_reset(num_train_views=120) == 220


def test_scaling_to_the_reference_length_changes_nothing() -> None:
    assert TrainConfig().scaled_to(30_000) == TrainConfig()


def test_scaling_multiplies_every_schedule_by_the_step_ratio() -> None:
    c = TrainConfig().scaled_to(3000)
    d = c.densify
    assert (c.steps, c.sh_degree_interval, c.resolution_schedule) == (3000, 100, 300)
    assert (d.refine_start_iter, d.refine_stop_iter, d.reset_every) == (50, 1500, 300)
    assert (d.refine_every, d.refine_scale2d_stop_iter) == (10, 400)
    assert d.max_pause_fraction == 0.5


def test_scaled_refine_period_has_a_floor_and_every_schedule_stays_positive() -> None:
    d = TrainConfig().scaled_to(30).densify
    assert d.refine_every == 10
    assert min(d.refine_start_iter, d.reset_every, d.refine_scale2d_stop_iter) >= 1


def test_pause_after_reset_is_clamped_to_the_allowed_fraction() -> None:
    short = TrainConfig().scaled_to(1000).densify  # reset every 100 steps
    assert short.pause_after_reset(num_train_views=12) == 22
    assert short.pause_after_reset(num_train_views=400) == 50
    assert TrainConfig().densify.pause_after_reset(num_train_views=4000) == 3000
    explicit = replace(TrainConfig().densify, pause_refine_after_reset=7)
    assert explicit.pause_after_reset(num_train_views=500) == 7


def test_cpu_profile_is_short_small_and_capped() -> None:
    c = TrainConfig.cpu()
    assert c.steps == 1000 and c.max_image_side == 320
    assert c.densify.max_gaussians == 20_000 and c.max_init_points == 10_000
    assert c.densify.reset_every == 100 and c.sh_degree_interval == 33
    assert TrainConfig.cpu(steps=200, seed=5).seed == 5
    assert TrainConfig.for_backend("cpu") == c
    assert TrainConfig.for_backend("gsplat") == TrainConfig()
    assert TrainConfig.for_backend("gsplat", steps=7000) == TrainConfig().scaled_to(7000)


def test_config_round_trips_through_a_dict() -> None:
    c = TrainConfig.cpu(steps=321, downscale=2)
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrainConfig(steps=0), "steps must be ≥ 1, got 0"),
        (lambda: TrainConfig(sh_degree=4), "sh_degree must be 0..3, got 4"),
        (lambda: TrainConfig(downscale=0), "downscale must be ≥ 1 or None, got 0"),
        (lambda: TrainConfig(ssim_lambda=1.5), r"ssim_lambda must be in \[0, 1\], got 1.5"),
        (lambda: TrainConfig(init_opacity=1.0), r"init_opacity must be in \(0, 1\), got 1.0"),
        (lambda: TrainConfig(eval_every=0), "eval_every must be ≥ 1 or None, got 0"),
        (lambda: TrainConfig(max_init_points=0), "max_init_points must be ≥ 1 or None, got 0"),
        (lambda: DensifyConfig(refine_every=0), "densify.refine_every must be ≥ 1, got 0"),
        (lambda: DensifyConfig(prune_opa=0.5), r"densify.prune_opa must be in \(0, 0.5\)"),
        (lambda: DensifyConfig(max_gaussians=0), "densify.max_gaussians must be ≥ 1, got 0"),
        (lambda: LearningRates(means=-1.0), "lr.means must be finite and ≥ 0, got -1.0"),
        (lambda: LearningRates(eps=float("inf")), "lr.eps must be finite and > 0, got inf"),
        (lambda: TrainConfig().scaled_to(0), "steps must be ≥ 1, got 0"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_resolution_schedule_quarter_half_full() -> None:
    c = TrainConfig()
    assert [resolution_divisor_at(c, s) for s in (0, 2999, 3000, 5999, 6000, 29_999)] == [
        4,
        4,
        2,
        2,
        1,
        1,
    ]


def test_sh_degree_grows_every_interval_up_to_the_maximum() -> None:
    c = TrainConfig()
    assert [sh_degree_at(c, s) for s in (0, 999, 1000, 2500, 3000, 29_000)] == [0, 0, 1, 2, 3, 3]
    assert sh_degree_at(TrainConfig(sh_degree=1), 5000) == 1


def test_means_learning_rate_decays_exponentially_over_the_run() -> None:
    c = TrainConfig()
    assert means_lr_at(c, 0) == pytest.approx(1.6e-4)
    assert means_lr_at(c, 15_000) == pytest.approx(1.6e-5)
    assert means_lr_at(c, 30_000) == pytest.approx(1.6e-6)
    assert means_lr_at(c, 40_000) == pytest.approx(1.6e-6)
    short = c.scaled_to(100)
    assert means_lr_at(short, 50) == pytest.approx(1.6e-5)
