"""Brute-force reference rasterizer: every Gaussian evaluated at every pixel.

Slow (``O(pixels × Gaussians)`` memory) and obviously correct; it exists as the oracle the fast
backends are tested against (run it in float64) and for tiny images. Its compositing rules are
the contract every backend follows, identical to gsplat's ``rasterize_to_pixels``:

1. Gaussians are composited front to back in order of camera depth (stable for ties).
2. At a pixel centre ``p``, ``sigma = 0.5 (a dx² + c dy²) + b dx dy`` with ``d = means2d - p``
   and ``alpha = min(0.999, opacity · exp(-sigma))``.
3. A Gaussian is skipped at a pixel when ``sigma < 0`` or ``alpha < 1/255``, and everywhere when
   it was culled (``radii == 0``).
4. With transmittance ``T`` (1 before the first Gaussian), compositing stops *before* the first
   Gaussian whose ``T · (1 - alpha) ≤ 1e-4``; that Gaussian and all behind it are dropped.
5. ``rgb = Σ alpha_i T_i c_i + T_final · background``; ``alpha = 1 - T_final``;
   ``depth = Σ alpha_i T_i z_i``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.render.projection import project
from pipeline.render.sh import eval_sh
from pipeline.render.types import Camera, Gaussians, RenderOutput, RenderSettings

__all__ = ["ALPHA_MAX", "ALPHA_MIN", "T_MIN", "composite_dense", "render_dense", "view_colors"]

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4


def view_colors(gaussians: Gaussians, camera: Camera, sh_degree: int) -> Tensor:
    """Per-Gaussian RGB ``[N, 3]`` seen from ``camera``: ``max(SH(dir) + 0.5, 0)``."""
    dirs = gaussians.means - camera.camera_center.to(gaussians.means.dtype)
    return torch.clamp_min(eval_sh(sh_degree, gaussians.sh, dirs) + 0.5, 0.0)


def render_dense(gaussians: Gaussians, camera: Camera, settings: RenderSettings) -> RenderOutput:
    """Render one view by brute force (see the module docstring for the exact rules)."""
    proj = project(gaussians, camera, settings.eps2d, settings.near_plane, settings.far_plane)
    colors = view_colors(gaussians, camera, settings.sh_degree)
    visible = (proj.radii > 0).all(dim=-1)
    order = torch.argsort(proj.depths.detach(), stable=True)
    order = order[visible[order]]
    rgb, alpha, depth = composite_dense(
        proj.means2d[order],
        proj.conics[order],
        gaussians.opacities[order],
        colors[order],
        proj.depths[order],
        camera.width,
        camera.height,
        torch.tensor(settings.background, dtype=colors.dtype),
    )
    return RenderOutput(rgb, alpha, depth, proj.means2d, proj.radii, proj.depths)


def composite_dense(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    colors: Tensor,
    depths: Tensor,
    width: int,
    height: int,
    background: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Composite depth-sorted 2D Gaussians over every pixel.

    Args:
        means2d: ``[M, 2]``, conics ``[M, 3]``, opacities ``[M]``, colors ``[M, 3]``,
            depths ``[M]``: the visible Gaussians, nearest first. ``means2d`` may also be
            ``[H * W, M, 2]``, one copy per pixel (row-major), so that its gradient separates
            the pixels' contributions.
        background: ``[3]``.

    Returns:
        ``rgb [H, W, 3]``, ``alpha [H, W, 1]``, ``depth [H, W, 1]``.
    """
    dtype = means2d.dtype
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5,
        indexing="ij",
    )  # fmt: skip
    pixels = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)  # [P, 2]
    # A [P, M, 2] means2d (one copy per pixel) gives per-pixel gradients, e.g. for absgrad.
    d = (means2d if means2d.dim() == 3 else means2d.unsqueeze(0)) - pixels.unsqueeze(1)
    a, b, c = conics.unbind(-1)
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = torch.clamp_max(opacities * torch.exp(-sigma), ALPHA_MAX)
    used = (sigma >= 0) & (alpha >= ALPHA_MIN)
    alpha = torch.where(used, alpha, torch.zeros_like(alpha))
    transmit_after = torch.cumprod(1.0 - alpha, dim=-1)  # T after each Gaussian
    transmit_before = torch.cat(
        [torch.ones_like(transmit_after[:, :1]), transmit_after[:, :-1]], dim=-1
    )
    kept = transmit_after.detach() > T_MIN  # monotone: the first failure drops the rest
    weights = torch.where(kept, alpha * transmit_before, torch.zeros_like(alpha))
    final_t = 1.0 - weights.sum(dim=-1, keepdim=True)
    rgb = weights @ colors + final_t * background.to(dtype)
    depth = weights @ depths.unsqueeze(-1)
    shape = (height, width)
    return rgb.reshape(*shape, 3), (1.0 - final_t).reshape(*shape, 1), depth.reshape(*shape, 1)
