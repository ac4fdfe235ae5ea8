"""Random and real-shaped Gaussians as numpy :class:`SplatArrays` for the format tests."""

from __future__ import annotations

import numpy as np

from pipeline.formats.arrays import SplatArrays
from tests.support.splats import random_splats


def random_arrays(n: int, sh_degree: int = 3, seed: int = 0) -> SplatArrays:
    """:func:`tests.support.splats.random_splats` as numpy arrays."""
    return SplatArrays.from_splats(random_splats(n, sh_degree=sh_degree, seed=seed))


def scene_arrays(n: int, sh_degree: int = 3, seed: int = 0) -> SplatArrays:
    """Real-shaped Gaussians: clustered surfaces tens of units across, log-normal scales,
    mostly opaque or nearly transparent, small view-dependent SH shared by nearby Gaussians."""
    rng = np.random.default_rng(seed)
    clusters = rng.uniform(-30, 30, (32, 3))
    owner = rng.integers(0, 32, n)
    means = clusters[owner] + rng.normal(0, 2.0, (n, 3)) * rng.uniform(0.2, 1, (n, 1))
    k = (sh_degree + 1) ** 2
    sh = np.zeros((n, k, 3))
    sh[:, 0] = rng.normal(0, 1.0, (32, 3))[owner] + rng.normal(0, 0.3, (n, 3))
    if k > 1:
        sh[:, 1:] = rng.normal(0, 0.15, (32, k - 1, 3))[owner] + rng.normal(0, 0.03, (n, k - 1, 3))
    logits = np.where(rng.random(n) < 0.7, rng.normal(4, 1.5, n), rng.normal(-3, 1.5, n))
    return SplatArrays(
        means=means.astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        log_scales=rng.normal(-4.5, 1.0, (n, 3)).astype(np.float32),
        logit_opacities=logits.astype(np.float32),
        sh=sh.astype(np.float32),
    )
