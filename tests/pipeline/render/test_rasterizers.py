"""Every backend against the brute-force float64 oracle, on fresh random scenes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor

from pipeline.render.dense import composite_dense, render_dense, view_colors
from pipeline.render.projection import project
from pipeline.render.types import Camera, Gaussians, RenderOutput, RenderSettings
from tests.pipeline.render.backends import BACKENDS, BackendCase, leaf_copy
from tests.pipeline.render.factories import look_at_camera, random_gaussians

SETTINGS = RenderSettings(background=(0.2, 0.5, 0.9))


def _weights(out: RenderOutput, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(  # type: ignore[return-value]
        torch.randn(t.shape, generator=g, dtype=torch.float64)
        for t in (out.rgb, out.alpha, out.depth)
    )


def _loss(out: RenderOutput, weights: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """A random linear functional of every output channel (rgb, alpha, depth)."""
    parts = (out.rgb, out.alpha, out.depth)
    return sum(
        ((p.to(torch.float64).cpu() * w).sum() for p, w in zip(parts, weights, strict=True)),
        torch.zeros((), dtype=torch.float64),
    )


def _assert_images_close(out: RenderOutput, ref: RenderOutput, atol: float) -> None:
    for name in ("rgb", "alpha", "depth"):
        ours, theirs = getattr(out, name).detach().double().cpu(), getattr(ref, name).detach()
        assert ours.shape == theirs.shape, name
        err = (ours - theirs).abs().max().item()
        assert err <= atol * max(1.0, theirs.abs().max().item()), f"{name}: max error {err:.3g}"


def _render_both(
    case: BackendCase, gaussians: Gaussians, camera: Camera, settings: RenderSettings
) -> tuple[Gaussians, RenderOutput, Gaussians, RenderOutput]:
    """Render with the backend under test and with the oracle, from separate leaf copies."""
    ours_in, ref_in = case.gaussians(gaussians), leaf_copy(gaussians, torch.float64)
    out = case.rasterizer().render(ours_in, camera, settings)
    return ours_in, out, ref_in, render_dense(ref_in, camera, settings)


SCENES = [  # (seed, width, height, Gaussians, SH degree rendered)
    (0, 64, 48, 150, 3),
    (1, 37, 29, 120, 2),
    (2, 16, 16, 80, 1),
    (3, 50, 7, 100, 0),
    (4, 97, 61, 200, 3),
]


@pytest.mark.parametrize("case", BACKENDS)
@pytest.mark.parametrize(("seed", "width", "height", "n", "degree"), SCENES)
def test_forward_matches_oracle(
    case: BackendCase, seed: int, width: int, height: int, n: int, degree: int
) -> None:
    gaussians = random_gaussians(n, seed=seed)
    camera = look_at_camera((0.4 * seed - 0.8, -0.3, -3.0), width=width, height=height)
    settings = RenderSettings(sh_degree=degree, background=(0.2, 0.5, 0.9))
    _, out, _, ref = _render_both(case, gaussians, camera, settings)
    _assert_images_close(out, ref, case.atol)
    assert ref.alpha.max() > 0.5, "the scene should cover part of the image"
    visible = _assert_same_visibility(case, out.visible.cpu(), ref.visible)
    assert torch.allclose(out.means2d[visible].double().cpu(), ref.means2d[visible], atol=1e-3)
    assert torch.allclose(out.depths[visible].double().cpu(), ref.depths[visible], atol=1e-5)


def _assert_same_visibility(case: BackendCase, ours: Tensor, reference: Tensor) -> Tensor:
    """Our backend culls like the oracle; gsplat's opacity-aware boxes may cull a few more."""
    if case.name == "cpu":
        assert torch.equal(ours, reference)
    else:
        assert not (ours & ~reference).any() and ours.sum() >= 0.9 * reference.sum()
    return ours


@pytest.mark.parametrize("case", BACKENDS)
@pytest.mark.parametrize("seed", [10, 11, 12])
def test_gradients_match_oracle(case: BackendCase, seed: int) -> None:
    gaussians = random_gaussians(120, seed=seed)
    camera = look_at_camera((0.5, 0.2, -3.0), width=45, height=38)
    ours_in, out, ref_in, ref = _render_both(case, gaussians, camera, SETTINGS)
    out.means2d.retain_grad()
    ref.means2d.retain_grad()
    weights = _weights(ref, seed)
    _loss(out, weights).backward()
    _loss(ref, weights).backward()
    names = ("means", "quats", "scales", "opacities", "sh")
    for name, ours, theirs in zip(names, ours_in._tensors(), ref_in._tensors(), strict=True):
        _assert_grad_close(ours.grad, theirs.grad, case.grad_rtol, name)
    visible = _assert_same_visibility(case, out.visible.cpu(), ref.visible)
    assert out.means2d.grad is not None and ref.means2d.grad is not None
    _assert_grad_close(out.means2d.grad[visible], ref.means2d.grad[visible], case.grad_rtol,
                       "means2d")  # fmt: skip


def _assert_grad_close(ours: Tensor | None, theirs: Tensor | None, rtol: float, name: str) -> None:
    assert ours is not None and theirs is not None, f"{name}: no gradient"
    scale = theirs.abs().max().item()
    assert scale > 0, f"{name}: the oracle's gradient is zero, the test would be vacuous"
    err = (ours.double().cpu() - theirs).abs().max().item()
    assert err <= rtol * scale, f"{name}: max error {err:.3g} vs scale {scale:.3g}"


def _brute_force_absgrad(
    gaussians: Gaussians, camera: Camera, weights: tuple[Tensor, Tensor, Tensor]
) -> Tensor:
    """``Σ_pixels |d loss_pixel / d means2d|`` ``[N, 2]``, via one means2d copy per pixel."""
    proj = project(gaussians, camera, SETTINGS.eps2d, SETTINGS.near_plane, SETTINGS.far_plane)
    colors = view_colors(gaussians, camera, SETTINGS.sh_degree).detach()
    visible = (proj.radii > 0).all(dim=-1)
    order = torch.argsort(proj.depths.detach(), stable=True)
    order = order[visible[order]]
    pixels = camera.width * camera.height
    per_pixel = proj.means2d[order].detach().expand(pixels, -1, -1).clone().requires_grad_(True)
    rgb, alpha, depth = composite_dense(
        per_pixel, proj.conics[order].detach(), gaussians.opacities[order].detach(),
        colors[order], proj.depths[order].detach(), camera.width, camera.height,
        torch.tensor(SETTINGS.background, dtype=torch.float64),
    )  # fmt: skip
    w_rgb, w_alpha, w_depth = weights
    ((rgb * w_rgb).sum() + (alpha * w_alpha).sum() + (depth * w_depth).sum()).backward()
    assert per_pixel.grad is not None
    absgrad = torch.zeros(len(gaussians), 2, dtype=torch.float64)
    absgrad[order] = per_pixel.grad.abs().sum(dim=0)
    return absgrad


@pytest.mark.parametrize("case", BACKENDS)
@pytest.mark.parametrize("seed", [20, 21])
def test_absgrad_matches_per_pixel_brute_force(case: BackendCase, seed: int) -> None:
    gaussians = random_gaussians(40, seed=seed)
    camera = look_at_camera((0.0, 0.4, -3.0), width=23, height=19)
    ours_in = case.gaussians(gaussians)
    settings = dataclasses.replace(SETTINGS, absgrad=True)
    out = case.rasterizer().render(ours_in, camera, settings)
    out.means2d.retain_grad()
    weights = _weights(render_dense(gaussians, camera, SETTINGS), seed)
    _loss(out, weights).backward()
    expected = _brute_force_absgrad(gaussians, camera, weights)
    absgrad = out.means2d.absgrad  # type: ignore[attr-defined]
    assert absgrad.shape == (40, 2)
    _assert_grad_close(absgrad, expected, case.grad_rtol, "absgrad")
    # |Σ g| ≤ Σ |g|, strictly somewhere when pixels pull in different directions.
    assert out.means2d.grad is not None
    assert (out.means2d.grad.abs() <= absgrad + 1e-12).all()
    assert (absgrad - out.means2d.grad.abs()).max() > 1e-6
