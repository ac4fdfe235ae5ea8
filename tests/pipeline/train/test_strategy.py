"""Densification: statistics, clone/split/prune, opacity reset, caps, moments following rows."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.render.projection import quat_to_rotmat
from pipeline.render.types import RenderOutput
from pipeline.splats import Splats
from pipeline.train.config import DensifyConfig, LearningRates
from pipeline.train.optim import make_optimizers
from pipeline.train.params import PARAM_NAMES, Params, params_from_splats
from pipeline.train.strategy import DensifyState, DensifyStrategy, GradientSource, RefineReport
from tests.pipeline.train.factories import moments, params_with_moments

WIDTH, HEIGHT = 40, 20

# Thresholds with nothing scheduled in the way: refine at step 200, no resets before 1000.
CONFIG = DensifyConfig(
    refine_start_iter=0,
    refine_stop_iter=10_000,
    refine_every=100,
    reset_every=1000,
    pause_refine_after_reset=0,
    refine_scale2d_stop_iter=500,
)


def render_output(
    grads: torch.Tensor, radii: torch.Tensor, absgrads: torch.Tensor | None = None
) -> RenderOutput:
    """What a backend returns after ``backward``: ``means2d`` carrying ``grad`` (and absgrad)."""
    n = len(grads)
    means2d = torch.zeros(n, 2, requires_grad=True)
    means2d.grad = grads.clone()
    if absgrads is not None:
        means2d.absgrad = absgrads  # type: ignore[attr-defined]
    return RenderOutput(
        rgb=torch.zeros(HEIGHT, WIDTH, 3),
        alpha=torch.zeros(HEIGHT, WIDTH, 1),
        depth=torch.zeros(HEIGHT, WIDTH, 1),
        means2d=means2d,
        radii=radii.to(torch.int32),
        depths=torch.ones(n),
    )


def splats(log_scales: list[list[float]], logit_opacities: list[float] | None = None) -> Splats:
    n = len(log_scales)
    g = torch.Generator().manual_seed(n)
    return Splats(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.tensor(log_scales),
        logit_opacities=torch.tensor(logit_opacities or [2.0] * n),
        sh=torch.randn(n, 4, 3, generator=g),
    )


def state_with(grad2d: list[float], radii: list[float] | None = None) -> DensifyState:
    """Statistics as if each Gaussian had been seen once with these gradient norms."""
    n = len(grad2d)
    return DensifyState(
        grad2d=torch.tensor(grad2d),
        count=torch.ones(n),
        radii=torch.tensor(radii or [0.0] * n),
        gradient_source="grad",
    )


SMALL, LARGE = math.log(0.005), math.log(0.2)  # below / above grow_scale3d = 0.01


def test_observe_normalises_gradients_to_device_units_for_visible_gaussians() -> None:
    strategy = DensifyStrategy(CONFIG, num_train_views=5)
    state = DensifyState.zeros(3)
    grads = torch.tensor([[0.001, 0.002], [0.003, 0.0], [1.0, 1.0]])
    radii = torch.tensor([[4, 2], [1, 6], [0, 0]])  # the third was culled
    for _ in range(2):
        strategy.observe(state, render_output(grads, radii))
    expected = torch.tensor(
        [math.hypot(0.001 * WIDTH / 2, 0.002 * HEIGHT / 2), 0.003 * WIDTH / 2, 0.0]
    )
    assert torch.allclose(state.grad2d, 2 * expected)
    assert state.count.tolist() == [2.0, 2.0, 0.0]
    assert torch.allclose(state.radii, torch.tensor([4 / WIDTH, 6 / WIDTH, 0.0]))
    assert state.gradient_source == "grad"


def test_observe_prefers_absgrad_and_falls_back_to_grad() -> None:
    grads, radii = torch.tensor([[0.01, 0.0]]), torch.tensor([[1, 1]])
    absgrads = torch.tensor([[0.03, 0.0]])
    state = DensifyState.zeros(1)
    DensifyStrategy(CONFIG, 5).observe(state, render_output(grads, radii, absgrads))
    assert state.gradient_source == "absgrad"
    assert state.grad2d.item() == pytest.approx(0.03 * WIDTH / 2)
    plain = DensifyState.zeros(1)
    no_abs = replace(CONFIG, absgrad=False)
    DensifyStrategy(no_abs, 5).observe(plain, render_output(grads, radii, absgrads))
    assert plain.gradient_source == "grad"
    assert plain.grad2d.item() == pytest.approx(0.01 * WIDTH / 2)


def grow(
    params: Params, state: DensifyState, config: DensifyConfig = CONFIG, step: int = 200
) -> tuple[int, int]:
    """Run the growth half of a refinement; returns (cloned, split)."""
    optimizers = make_optimizers(params, LearningRates())
    strategy = DensifyStrategy(config, num_train_views=5)
    return strategy._grow(params, optimizers, state, step, torch.Generator().manual_seed(0))


def test_high_gradient_small_gaussians_are_cloned_large_ones_split() -> None:
    source = splats([[SMALL] * 3, [LARGE] * 3, [LARGE] * 3, [SMALL] * 3])
    params = params_from_splats(source)
    state = state_with([0.001, 0.001, 0.0001, 0.0001])
    cloned, split = grow(params, state)
    assert (cloned, split) == (1, 1)
    means = params["means"].detach()
    # rows: kept 0, 2, 3, then the clone of 0, then the two children of 1
    assert len(means) == 6
    assert torch.equal(means[:3], source.means[[0, 2, 3]])
    assert torch.equal(means[3], source.means[0])
    assert torch.allclose(params["log_scales"][4:], torch.full((2, 3), LARGE - math.log(1.6)))
    assert torch.equal(params["sh_dc"][4:].detach(), source.sh[[1, 1], :1])


def test_plain_and_absolute_gradients_use_their_own_thresholds() -> None:
    cases: tuple[tuple[GradientSource, int], ...] = (("grad", 1), ("absgrad", 0))
    for source, expected in cases:
        params = params_from_splats(splats([[LARGE] * 3]))
        state = replace(state_with([0.0005]), gradient_source=source)
        assert grow(params, state)[1] == expected


def test_big_on_screen_gaussians_split_until_the_screen_rules_stop() -> None:
    for step, expected in ((200, 1), (600, 0)):
        params = params_from_splats(splats([[SMALL] * 3]))
        assert grow(params, state_with([0.0], radii=[0.06]), step=step) == (0, expected)


def test_split_children_are_drawn_from_the_parent_gaussian() -> None:
    n = 4000
    log_scales = torch.tensor([math.log(0.3), math.log(0.1), math.log(0.02)])
    quat = torch.tensor([0.8, 0.2, -0.4, 0.3])
    source = Splats(
        means=torch.tensor([1.0, 2.0, 3.0]).repeat(n, 1),
        quats=quat.repeat(n, 1),
        log_scales=log_scales.repeat(n, 1),
        logit_opacities=torch.zeros(n),
        sh=torch.zeros(n, 1, 3),
    )
    params = params_from_splats(source)
    assert grow(params, state_with([1.0] * n)) == (0, n)
    offsets = params["means"].detach().double() - torch.tensor([1.0, 2.0, 3.0]).double()
    rotation = quat_to_rotmat(quat[None].double())[0]
    expected_cov = rotation @ torch.diag(log_scales.double().exp() ** 2) @ rotation.T
    empirical_cov = offsets.T @ offsets / len(offsets)
    assert torch.allclose(empirical_cov, expected_cov, atol=0.004)
    assert offsets.mean(dim=0).abs().max() < 0.015


def test_cap_keeps_the_highest_gradient_candidates() -> None:
    params = params_from_splats(splats([[LARGE] * 3] * 5))
    capped = replace(CONFIG, max_gaussians=7)
    state = state_with([0.001, 0.005, 0.0001, 0.003, 0.002])
    assert grow(params, state, capped) == (0, 2)
    # the two highest gradients (rows 1 and 3) were split; their children close the list
    children_scales = params["log_scales"][-4:].detach()
    assert torch.allclose(children_scales, torch.full((4, 3), LARGE - math.log(1.6)))
    assert len(params["means"]) == 7


def test_statistics_follow_the_rows_they_describe() -> None:
    params = params_from_splats(splats([[SMALL] * 3, [LARGE] * 3, [LARGE] * 3]))
    state = state_with([0.001, 0.001, 0.0], radii=[0.01, 0.02, 0.03])
    grow(params, state)
    assert torch.allclose(state.radii, torch.tensor([0.01, 0.03, 0.01, 0.02, 0.02]))


@pytest.mark.parametrize(
    ("config", "step", "survivors"),
    [
        (CONFIG, 500, [1, 2, 3]),  # before the first reset: opacity only
        (CONFIG, 1200, [2, 3]),  # after it: also larger than prune_scale3d
        (replace(CONFIG, reset_every=100), 300, [3]),  # and big on screen, until step 500
    ],
)
def test_pruning_removes_transparent_then_huge_gaussians(
    config: DensifyConfig, step: int, survivors: list[int]
) -> None:
    source = splats(
        [[SMALL] * 3, [math.log(0.6)] * 3, [SMALL] * 3, [SMALL] * 3],
        [math.log(0.05 / 0.95), 2.0, 2.0, 2.0],
    )
    params = params_from_splats(source)
    optimizers = make_optimizers(params, LearningRates())
    state = state_with([0.0] * 4, radii=[0.0, 0.0, 0.2, 0.0])
    pruned = DensifyStrategy(config, 5)._prune(params, optimizers, state, step)
    assert pruned == 4 - len(survivors)
    assert torch.equal(params["means"].detach(), source.means[survivors])
    assert torch.equal(state.radii, torch.tensor([0.0, 0.0, 0.2, 0.0])[survivors])


def test_refinement_schedule_with_the_pause_after_resets() -> None:
    config = DensifyConfig(
        refine_start_iter=500, refine_stop_iter=15_000, refine_every=100, reset_every=3000
    )
    strategy = DensifyStrategy(config, num_train_views=150)  # pause: 250 steps
    refining = [s for s in range(0, 16_000, 100) if strategy.refines_at(s)]
    assert refining[:3] == [600, 700, 800]
    assert 3000 not in refining and 3200 not in refining and 3300 in refining
    assert refining[-1] == 14_900


def test_step_resets_opacities_on_schedule_and_forgets_their_moments() -> None:
    params, optimizers = params_with_moments(6)
    with torch.no_grad():
        params["logit_opacities"].copy_(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, -1.5]))
    config = replace(CONFIG, refine_start_iter=5000, reset_every=300)
    strategy = DensifyStrategy(config, num_train_views=5)
    output = render_output(torch.zeros(6, 2), torch.ones(6, 2))
    generator = torch.Generator()
    report = strategy.step(params, optimizers, DensifyState.zeros(6), 299, output, generator)
    assert not report.opacity_reset and params["logit_opacities"][3] == 1.0
    report = strategy.step(params, optimizers, DensifyState.zeros(6), 300, output, generator)
    ceiling = math.log(0.2 / 0.8)
    assert report.opacity_reset
    expected = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, -1.5]).clamp(max=ceiling)
    assert torch.allclose(params["logit_opacities"].detach(), expected)
    assert not moments(optimizers, params, "logit_opacities")["exp_avg"].any()
    assert moments(optimizers, params, "means")["exp_avg"].any()


def test_nothing_happens_from_the_refine_stop_on() -> None:
    params, optimizers = params_with_moments(4)
    config = replace(CONFIG, refine_stop_iter=1000)
    strategy = DensifyStrategy(config, num_train_views=5)
    state = DensifyState.zeros(4)
    output = render_output(torch.ones(4, 2), torch.ones(4, 2))
    report = strategy.step(params, optimizers, state, 1000, output, torch.Generator())
    assert report == RefineReport() and not state.count.any()


def test_a_refinement_step_grows_prunes_and_keeps_moments_with_rows() -> None:
    params, optimizers = params_with_moments(4)
    with torch.no_grad():
        params["log_scales"].copy_(
            torch.tensor([[SMALL] * 3, [LARGE] * 3, [LARGE] * 3, [SMALL] * 3])
        )
        params["logit_opacities"].copy_(torch.tensor([2.0, 2.0, 2.0, -5.0]))
    before = moments(optimizers, params, "sh_rest")
    strategy = DensifyStrategy(CONFIG, num_train_views=5)
    state = DensifyState.zeros(4)
    grads = torch.tensor([[0.01, 0.0], [0.01, 0.0], [0.0, 0.0], [0.0, 0.0]])
    output = render_output(grads, torch.ones(4, 2))
    report = strategy.step(params, optimizers, state, 200, output, torch.Generator())
    assert (report.duplicated, report.split, report.pruned) == (1, 1, 1)
    # rows after growth: 0, 2, 3, clone of 0, children of 1 ×2; then row 3 (transparent) goes
    after = moments(optimizers, params, "sh_rest")
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(after[key][:2], before[key][[0, 2]])
        assert not after[key][2:].any()
    assert len(params["means"]) == 5 and not state.count.any()
    assert all(len(params[n]) == 5 for n in PARAM_NAMES)


# Our parameter names → gsplat's (simple_trainer / splatfacto's ``gauss_params`` layout).
_GSPLAT_NAMES = {"means": "means", "quats": "quats", "log_scales": "scales",
                 "logit_opacities": "opacities", "sh_dc": "sh0", "sh_rest": "shN"}  # fmt: skip


def test_refinement_matches_gsplat_default_strategy_as_splatfacto_sets_it() -> None:
    """pipeline-reference.md §3.3: splatfacto's DefaultStrategy mapping, against gsplat's own
    strategy (pure torch on CPU) over a run of steps: pauses after the reset at 3000, screen-
    size rules before 4000, scale pruning after the first reset; every row, in order, with
    Adam's moments. Steps avoid multiples of 3000: gsplat 1.5.3 never resets opacities."""
    strategy_module = pytest.importorskip("gsplat.strategy")
    n, views = 300, 40
    g = torch.Generator().manual_seed(0)
    start = Splats(
        means=torch.randn(n, 3, generator=g),
        quats=torch.randn(n, 4, generator=g),
        log_scales=math.log(0.002) + torch.rand(n, 3, generator=g) * math.log(25.0),  # to 0.05
        logit_opacities=torch.randn(n, generator=g) * 3.0,
        sh=torch.randn(n, 16, 3, generator=g),
    )
    ours = params_from_splats(start)
    ours_opt = make_optimizers(ours, LearningRates())
    theirs = {_GSPLAT_NAMES[k]: torch.nn.Parameter(v.detach().clone()) for k, v in ours.items()}
    theirs_opt = {
        _GSPLAT_NAMES[k]: torch.optim.Adam(
            [theirs[_GSPLAT_NAMES[k]]], lr=o.defaults["lr"], eps=1e-15
        )
        for k, o in ours_opt.items()
    }
    strategy = DensifyStrategy(DensifyConfig(), num_train_views=views)
    state = DensifyState.zeros(n)
    reference = strategy_module.DefaultStrategy(
        prune_opa=0.1, grow_grad2d=0.0008, grow_scale3d=0.01, grow_scale2d=0.05,
        prune_scale3d=0.5, prune_scale2d=0.15, refine_scale2d_stop_iter=4000,
        refine_start_iter=500, refine_stop_iter=15000, reset_every=3000, refine_every=100,
        pause_refine_after_reset=views + 100, absgrad=True, revised_opacity=False,
    )  # fmt: skip
    reference_state = reference.initialize_state(scene_scale=1.0)
    steps = [550, 599, 600, 3050, 3100, 3120, 3199, 3200, 3900, 3999, 4000, 4100, 4199, 4200]
    totals = RefineReport()
    for step in steps:
        n = len(ours["means"])
        for name, param in ours.items():  # the same Adam step on both sides
            grad = torch.randn(param.shape, generator=g) * 1e-3
            param.grad, theirs[_GSPLAT_NAMES[name]].grad = grad.clone(), grad.clone()
        for name, optimizer in ours_opt.items():
            optimizer.step()
            theirs_opt[_GSPLAT_NAMES[name]].step()
        absgrad = torch.rand(n, 2, generator=g) * 6e-5
        radii = (torch.rand(n, 2, generator=g) * 5.0).to(torch.int32)
        means2d = torch.zeros(n, 2, requires_grad=True)
        means2d.grad, means2d.absgrad = absgrad * 0.5, absgrad  # type: ignore[attr-defined]
        output = render_output(absgrad * 0.5, radii)
        output = replace(output, means2d=means2d)
        report = strategy.step(
            ours, ours_opt, state, step, output, torch.Generator().manual_seed(step)
        )
        batch_means2d = torch.zeros(1, n, 2, requires_grad=True)
        batch_means2d.grad, batch_means2d.absgrad = absgrad[None] * 0.5, absgrad[None]  # type: ignore[attr-defined]
        info = {"width": WIDTH, "height": HEIGHT, "n_cameras": 1, "radii": radii[None],
                "gaussian_ids": None, "means2d": batch_means2d}  # fmt: skip
        torch.manual_seed(step)  # gsplat's split draws from the global generator
        reference.step_post_backward(theirs, theirs_opt, reference_state, step, info)
        totals.duplicated += report.duplicated
        totals.split += report.split
        totals.pruned += report.pruned
        for name, param in ours.items():
            other = theirs[_GSPLAT_NAMES[name]]
            torch.testing.assert_close(
                param.data, other.data, rtol=0, atol=1e-6, msg=f"{name}@{step}"
            )
            ours_moments = ours_opt[name].state[param]
            theirs_moments = theirs_opt[_GSPLAT_NAMES[name]].state[other]
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(ours_moments[key], theirs_moments[key], rtol=0, atol=0)
    # Every kind of change happened (refinements at 600, 3200, 3900..4200; 3100 is paused).
    assert totals.duplicated > 0 and totals.split > 0 and totals.pruned > 0
