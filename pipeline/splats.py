"""Trainable (stored) Gaussian parameters, the form checkpoints and PLY files hold."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.render.types import Gaussians

__all__ = ["Splats"]


@dataclass
class Splats:
    """Gaussian splat parameters before activation.

    Attributes:
        means: ``[N, 3]`` centres, world units.
        quats: ``[N, 4]`` orientations ``(w, x, y, z)``, not necessarily unit length.
        log_scales: ``[N, 3]`` natural log of the standard deviations (world units).
        logit_opacities: ``[N]`` logit of the opacity.
        sh: ``[N, K, 3]`` SH coefficients, ``K = (degree + 1)**2``; ``sh[:, 0]`` is the DC term
            (PLY ``f_dc_*``), ``sh[:, 1:]`` the rest (PLY ``f_rest_*``, stored channel-major).
    """

    means: Tensor
    quats: Tensor
    log_scales: Tensor
    logit_opacities: Tensor
    sh: Tensor

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """Degree of the stored SH (0..3)."""
        return math.isqrt(int(self.sh.shape[1])) - 1

    def activated(self) -> Gaussians:
        """The rasterizer's view: ``exp`` scales and ``sigmoid`` opacities (differentiable)."""
        return Gaussians(
            means=self.means,
            quats=self.quats,
            scales=torch.exp(self.log_scales),
            opacities=torch.sigmoid(self.logit_opacities),
            sh=self.sh,
        )

    def detach(self) -> Splats:
        """A copy cut from the autograd graph."""
        return Splats(*(t.detach() for t in self.tensors()))

    def select(self, mask_or_index: Tensor) -> Splats:
        """The subset chosen by a bool mask ``[N]`` or an index tensor."""
        return Splats(*(t[mask_or_index] for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(means, quats, log_scales, logit_opacities, sh)``."""
        return (self.means, self.quats, self.log_scales, self.logit_opacities, self.sh)
