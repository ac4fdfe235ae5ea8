"""Random trained-looking splats, the one factory every pipeline test draws them from."""

from __future__ import annotations

import torch

from pipeline.splats import Splats

__all__ = ["random_splats"]


def random_splats(
    n: int, *, sh_degree: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Splats:
    """``n`` trained-looking Gaussians (in :class:`Splats`' stored form): centres uniform in
    the 2-unit cube around the origin, random quaternions (unnormalised), log-scales in
    [-4, -2), logit opacities ~ N(0, 2²) and ``(sh_degree + 1)²`` SH coefficients per channel."""
    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2
    return Splats(
        means=(torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2.0,
        quats=torch.randn(n, 4, generator=g, dtype=dtype),
        log_scales=torch.rand(n, 3, generator=g, dtype=dtype) * 2.0 - 4.0,
        logit_opacities=torch.randn(n, generator=g, dtype=dtype) * 2.0,
        sh=torch.randn(n, k, 3, generator=g, dtype=dtype) * 0.5,
    )
