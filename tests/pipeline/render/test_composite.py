"""The compositing kernels' three paths against the dense oracle, on hand-made 2D Gaussians.

Projection never produces the rare shapes on its own, so the tests feed screen-space Gaussians
straight in: smooth ones (exp-free walk), very sharp ones (an exp per pixel, as with
``eps2d`` near 0) and indefinite conics (no ellipse: every pixel of every tile is tested).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from pipeline.render.composite import composite_tiles, prepare_footprints
from pipeline.render.dense import composite_dense
from pipeline.render.tiles import bin_gaussians

WIDTH, HEIGHT = 45, 37


def _scene(kind: str, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``n`` screen-space Gaussians: means2d, conics, opacities, colours, depths."""
    g = torch.Generator().manual_seed(seed)
    n = 60
    means2d = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([WIDTH, HEIGHT])
    sigma = torch.exp(torch.rand(n, 2, generator=g, dtype=torch.float64) * 2.5 - 0.5)
    corr = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 1.8
    if kind == "sharp":
        sigma = sigma * 0.1  # conic entries far above the walk's limit of 20
    var_x, var_y = sigma[:, 0] ** 2, sigma[:, 1] ** 2
    cov_xy = corr * sigma[:, 0] * sigma[:, 1]
    det = var_x * var_y - cov_xy**2
    conics = torch.stack([var_y / det, -cov_xy / det, var_x / det], dim=-1)
    if kind == "indefinite":
        # b² > a c, mildly: the oracle's exp(-sigma) must stay finite where sigma < 0.
        conics[::3, 1] = 1.02 * torch.sqrt(conics[::3, 0] * conics[::3, 2])
    opacities = torch.rand(n, generator=g, dtype=torch.float64) * 0.95 + 0.03
    colors = torch.rand(n, 3, generator=g, dtype=torch.float64)
    depths = torch.rand(n, generator=g, dtype=torch.float64) * 5.0 + 1.0
    return means2d, conics, opacities, colors, depths


@pytest.mark.parametrize("kind", ["smooth", "sharp", "indefinite"])
@pytest.mark.parametrize("seed", [0, 1])
def test_composite_matches_dense_oracle(kind: str, seed: int) -> None:
    means2d, conics, opacities, colors, depths = (
        t.requires_grad_(True) for t in _scene(kind, seed)
    )
    features = torch.cat([colors, depths.unsqueeze(-1)], dim=-1)
    prepared = prepare_footprints(means2d, conics, opacities, features)
    visible = torch.ones(len(means2d), dtype=torch.bool)
    bins = bin_gaussians(prepared, depths, visible, WIDTH, HEIGHT)
    ours, alpha = composite_tiles(means2d, conics, opacities, features, prepared, bins, WIDTH,
                                  HEIGHT)  # fmt: skip
    order = torch.argsort(depths.detach(), stable=True)
    rgb, ref_alpha, ref_depth = composite_dense(
        means2d[order], conics[order], opacities[order], colors[order], depths[order],
        WIDTH, HEIGHT, torch.zeros(3, dtype=torch.float64),
    )  # fmt: skip
    assert (ours[..., :3] - rgb).abs().max() < 1e-10
    assert (ours[..., 3:] - ref_depth).abs().max() < 1e-9
    assert (alpha - ref_alpha).abs().max() < 1e-10
    assert ref_alpha.max() > 0.5
    weights = torch.randn(HEIGHT, WIDTH, 5, generator=torch.Generator().manual_seed(seed),
                          dtype=torch.float64)  # fmt: skip
    inputs = (means2d, conics, opacities, colors, depths)
    grads = torch.autograd.grad((torch.cat([ours, alpha], -1) * weights).sum(), inputs)
    reference = torch.autograd.grad((torch.cat([rgb, ref_depth, ref_alpha], -1) * weights).sum(),
                                    inputs)  # fmt: skip
    for ours_g, ref_g in zip(grads, reference, strict=True):
        assert (ours_g - ref_g).abs().max() <= 1e-8 * ref_g.abs().max()
