"""The brute-force oracle obeys the compositing contract on cases small enough to do by hand."""

from __future__ import annotations

import math

import torch

from pipeline.render.dense import render_dense
from pipeline.render.types import Gaussians, RenderSettings
from tests.pipeline.render.factories import look_at_camera, random_gaussians


def _single(opacity: float, rgb: tuple[float, float, float], z: float = 0.0) -> Gaussians:
    d = torch.float64
    return Gaussians(
        means=torch.tensor([[0.0, 0.0, z]], dtype=d),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=d),
        scales=torch.full((1, 3), 0.05, dtype=d),
        opacities=torch.tensor([opacity], dtype=d),
        sh=((torch.tensor([rgb], dtype=d) - 0.5) / 0.28209479177387814).reshape(1, 1, 3),
    )


def test_single_gaussian_centre_pixel_matches_hand_computation() -> None:
    camera = look_at_camera((0.0, 0.0, -2.0), width=33, height=33)
    settings = RenderSettings(sh_degree=0, background=(0.0, 0.0, 1.0))
    out = render_dense(_single(0.8, (1.0, 0.0, 0.0)), camera, settings)
    centre = out.means2d[0]
    assert torch.allclose(centre, torch.tensor([16.5, 16.5], dtype=torch.float64))
    # The centre pixel sits exactly on the mean: sigma = 0, alpha = opacity.
    assert math.isclose(float(out.alpha[16, 16, 0]), 0.8, rel_tol=1e-12)
    assert torch.allclose(out.rgb[16, 16], torch.tensor([0.8, 0.0, 0.2], dtype=torch.float64))
    assert math.isclose(float(out.depth[16, 16, 0]), 0.8 * 2.0, rel_tol=1e-12)
    # Far corner: nothing there, pure background.
    assert torch.allclose(out.rgb[0, 0], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))


def test_front_gaussian_occludes_back_one() -> None:
    camera = look_at_camera((0.0, 0.0, -2.0), width=9, height=9)
    front, back = _single(0.999, (0.0, 1.0, 0.0), z=-0.5), _single(0.9, (1.0, 0.0, 0.0), z=0.5)
    both = Gaussians(
        *(torch.cat([b, f]) for b, f in zip(back._tensors(), front._tensors(), strict=True))
    )
    out = render_dense(both, camera, RenderSettings(sh_degree=0))
    # alpha 0.999 at the centre leaves T = 1e-3 > 1e-4, so the back Gaussian adds 0.9e-3 red.
    assert math.isclose(float(out.rgb[4, 4, 1]), 0.999, rel_tol=1e-9)
    assert math.isclose(float(out.rgb[4, 4, 0]), 0.9 * 1e-3, rel_tol=1e-6)


def test_gradients_flow_to_every_parameter() -> None:
    gaussians = random_gaussians(40, seed=5)
    for t in gaussians._tensors():
        t.requires_grad_(True)
    out = render_dense(gaussians, look_at_camera((0.0, 0.0, -3.0)), RenderSettings())
    out.means2d.retain_grad()
    (out.rgb.sum() + out.depth.sum()).backward()
    for t in (*gaussians._tensors(), out.means2d):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
