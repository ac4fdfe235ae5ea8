"""Edge cases every backend must handle: empty and culled scenes, huge Gaussians, odd inputs."""

from __future__ import annotations

import pytest
import torch

from pipeline.render.dense import render_dense
from pipeline.render.types import Gaussians, RenderSettings
from tests.pipeline.render.backends import BACKENDS, CPU, BackendCase, leaf_copy
from tests.pipeline.render.factories import look_at_camera, random_gaussians

SETTINGS = RenderSettings(background=(0.3, 0.6, 0.1), near_plane=0.5, far_plane=8.0)
CAMERA = look_at_camera((0.0, 0.0, -3.0), width=40, height=27)


def _background(case: BackendCase, height: int, width: int) -> torch.Tensor:
    return torch.tensor(SETTINGS.background, dtype=torch.float64).expand(height, width, 3)


@pytest.mark.parametrize("case", BACKENDS)
def test_empty_scene_renders_background(case: BackendCase) -> None:
    gaussians = case.gaussians(random_gaussians(0))
    out = case.rasterizer().render(gaussians, CAMERA, SETTINGS)
    assert torch.equal(out.rgb.double().cpu(), _background(case, 27, 40))
    assert not out.alpha.any() and not out.depth.any()
    assert out.means2d.shape == (0, 2) and out.radii.shape == (0, 2) and out.depths.shape == (0,)
    out.rgb.sum().backward()
    assert gaussians.means.grad is not None and gaussians.means.grad.shape == (0, 3)


def _culled_scene() -> Gaussians:
    """Gaussians behind the camera, inside the near plane (one exactly at z = 0), beyond far."""
    gaussians = random_gaussians(30, seed=7)
    z_world = torch.tensor([-3.0, -3.2, -2.8, -5.0, -2.7, 5.5, 7.0], dtype=torch.float64)
    z_world = z_world.repeat(5)[:30]
    means = gaussians.means.clone()
    means[:, 2] = z_world  # the camera sits at z = -3 looking along +z: camera z = world z + 3
    means[0, :2] = 0.0
    return Gaussians(means, gaussians.quats, gaussians.scales, gaussians.opacities, gaussians.sh)


@pytest.mark.parametrize("case", BACKENDS)
def test_everything_culled_renders_background_with_zero_gradients(case: BackendCase) -> None:
    gaussians = case.gaussians(_culled_scene())
    out = case.rasterizer().render(gaussians, CAMERA, SETTINGS)
    assert not out.visible.any()
    assert torch.equal(out.rgb.double().cpu(), _background(case, 27, 40))
    (out.rgb.sum() + out.depth.sum() + out.alpha.sum()).backward()
    for t in gaussians._tensors():
        assert t.grad is not None and torch.equal(t.grad, torch.zeros_like(t))


@pytest.mark.parametrize("case", BACKENDS)
def test_culled_and_visible_mixed_match_oracle(case: BackendCase) -> None:
    culled, shown = _culled_scene(), random_gaussians(60, seed=8)
    mixed = Gaussians(
        *(torch.cat([c, s]) for c, s in zip(culled._tensors(), shown._tensors(), strict=True))
    )
    ours, ref_in = case.gaussians(mixed), leaf_copy(mixed, torch.float64)
    out = case.rasterizer().render(ours, CAMERA, SETTINGS)
    ref = render_dense(ref_in, CAMERA, SETTINGS)
    assert not out.visible[:30].any() and not ref.visible[:30].any()
    assert out.visible[30:].any() and not (out.visible.cpu() & ~ref.visible).any()
    assert (out.rgb.double().cpu() - ref.rgb).abs().max() <= case.atol
    out.rgb.sum().backward()
    ref.rgb.sum().backward()
    assert ours.means.grad is not None and ref_in.means.grad is not None
    assert torch.isfinite(ours.means.grad).all() and not ours.means.grad[:30].any()
    scale = ref_in.means.grad.abs().max()
    assert (
        ours.means.grad.double().cpu() - ref_in.means.grad
    ).abs().max() <= case.grad_rtol * scale


@pytest.mark.parametrize("case", BACKENDS)
def test_huge_gaussians_covering_every_tile_match_oracle(case: BackendCase) -> None:
    gaussians = random_gaussians(40, seed=9)
    scales = gaussians.scales.clone()
    scales[:4] = 3.0  # each one larger than the whole view
    opacities = gaussians.opacities.clone()
    opacities[:4] = 0.3
    huge = Gaussians(gaussians.means, gaussians.quats, scales, opacities, gaussians.sh)
    camera = look_at_camera((0.0, 0.0, -3.0), width=70, height=45)
    out = case.rasterizer().render(case.gaussians(huge), camera, SETTINGS)
    ref = render_dense(huge, camera, SETTINGS)
    assert (ref.radii[:4] > 70).all(), "the big Gaussians should overflow the image"
    assert (ref.alpha > 0.1).all(), "every pixel is covered"
    for name in ("rgb", "alpha", "depth"):
        ours, theirs = getattr(out, name).detach().double().cpu(), getattr(ref, name)
        assert (ours - theirs).abs().max() <= case.atol * max(1.0, theirs.abs().max().item())


def test_float32_agrees_with_float64() -> None:
    gaussians = random_gaussians(200, seed=13)
    camera = look_at_camera((0.3, 0.1, -3.0), width=57, height=41)
    rasterizer = CPU.rasterizer()
    single = leaf_copy(gaussians, torch.float32)
    out32 = rasterizer.render(single, camera, SETTINGS)
    out64 = rasterizer.render(leaf_copy(gaussians, torch.float64), camera, SETTINGS)
    assert out32.rgb.dtype == torch.float32 and out32.depth.dtype == torch.float32
    assert (out32.rgb.double() - out64.rgb).abs().max() < 1e-4
    assert (out32.alpha.double() - out64.alpha).abs().max() < 1e-4
    assert (out32.depth.double() - out64.depth).abs().max() < 1e-3
    out32.rgb.sum().backward()
    assert single.means.grad is not None and single.means.grad.dtype == torch.float32


@pytest.mark.parametrize("case", BACKENDS)
def test_non_contiguous_inputs_render_like_contiguous_ones(case: BackendCase) -> None:
    gaussians = case.gaussians(random_gaussians(80, seed=14))
    strided = Gaussians(
        means=gaussians.means.detach().repeat_interleave(2, dim=1)[:, ::2],
        quats=gaussians.quats.detach().T.contiguous().T,
        scales=gaussians.scales.detach().repeat_interleave(2, dim=1)[:, ::2],
        opacities=gaussians.opacities.detach().repeat_interleave(2)[::2],
        sh=gaussians.sh.detach().transpose(1, 2).contiguous().transpose(1, 2),
    )
    assert not any(t.is_contiguous() for t in strided._tensors())
    rasterizer = case.rasterizer()
    a = rasterizer.render(gaussians, CAMERA, SETTINGS)
    b = rasterizer.render(strided, CAMERA, SETTINGS)
    for name in ("rgb", "alpha", "depth"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("case", BACKENDS)
def test_opaque_stack_stops_compositing_like_the_oracle(case: BackendCase) -> None:
    """Many nearly opaque Gaussians on one spot: transmittance reaches the 1e-4 cut-off."""
    gaussians = random_gaussians(50, seed=15)
    n = len(gaussians)
    means = gaussians.means * 0.05
    opaque = Gaussians(
        means,
        gaussians.quats,
        torch.tensor([0.3, 0.2, 0.25], dtype=torch.float64).expand(n, 3),
        torch.full((n,), 0.97, dtype=torch.float64),
        gaussians.sh,
    )
    ours, ref_in = case.gaussians(opaque), leaf_copy(opaque, torch.float64)
    out = case.rasterizer().render(ours, CAMERA, SETTINGS)
    ref = render_dense(ref_in, CAMERA, SETTINGS)
    # Centre pixels stop after three Gaussians: T = 0.03² = 9e-4 > 1e-4 ≥ 0.03³.
    assert 1e-4 <= (1.0 - ref.alpha).min() < 1e-3, "the stack should hit the cut-off"
    assert (out.rgb.double().cpu() - ref.rgb).abs().max() <= case.atol
    assert (out.alpha.double().cpu() - ref.alpha).abs().max() <= case.atol
    weights = torch.linspace(-1.0, 1.0, 3, dtype=torch.float64)
    (out.rgb.double().cpu() * weights).sum().backward()
    (ref.rgb * weights).sum().backward()
    for ours_t, ref_t in zip(ours._tensors(), ref_in._tensors(), strict=True):
        assert ours_t.grad is not None and ref_t.grad is not None
        scale = ref_t.grad.abs().max()
        assert (ours_t.grad.double().cpu() - ref_t.grad).abs().max() <= case.grad_rtol * scale
