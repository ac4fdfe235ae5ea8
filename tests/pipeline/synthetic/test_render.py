"""The synthetic scene's tiled oracle renders exactly what the dense oracle renders."""

from __future__ import annotations

import torch

from pipeline.render.dense import render_dense
from pipeline.render.types import RenderSettings
from pipeline.synthetic.render import _render_tiled_oracle
from tests.pipeline.render.factories import look_at_camera, random_gaussians


def test_tiled_oracle_equals_dense_oracle() -> None:
    gaussians = random_gaussians(300, sh_degree=1, seed=3)
    gaussians.scales = gaussians.scales * 0.5
    camera = look_at_camera((0.3, -1.0, 3.0), width=53, height=37)  # tiles do not divide it
    settings = RenderSettings(sh_degree=1, background=(0.2, 0.4, 0.6))
    dense = render_dense(gaussians, camera, settings)
    rgb, depth, alpha = _render_tiled_oracle(gaussians, camera, settings)
    assert dense.visible.sum() > 100
    torch.testing.assert_close(rgb, dense.rgb, rtol=0, atol=1e-10)
    torch.testing.assert_close(alpha, dense.alpha[..., 0], rtol=0, atol=1e-10)
    torch.testing.assert_close(depth, dense.depth[..., 0], rtol=0, atol=1e-9)
