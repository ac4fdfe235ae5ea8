"""The Gaussians every format reads and writes: plain float32 numpy arrays, no torch.

Same stored (pre-activation) form as :class:`pipeline.splats.Splats` and a 3DGS PLY:
natural-log scales, logit opacities, ``(w, x, y, z)`` quaternions, SH coefficients with the DC
term first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from pipeline.splats import Splats

__all__ = ["F32", "SplatArrays", "sh_coefficients"]

F32 = NDArray[np.float32]


def sh_coefficients(degree: int) -> int:
    """SH coefficients per colour channel for ``degree`` (0..3): ``(degree + 1)²``."""
    return (degree + 1) ** 2


@dataclass
class SplatArrays:
    """Gaussian parameters as float32 arrays (CPU).

    Attributes:
        means: ``[N, 3]`` centres, world units.
        quats: ``[N, 4]`` orientations ``(w, x, y, z)``, not necessarily unit length.
        log_scales: ``[N, 3]`` natural log of the standard deviations.
        logit_opacities: ``[N]`` logit of the opacity.
        sh: ``[N, K, 3]`` SH coefficients, ``K = (degree + 1)²``; ``sh[:, 0]`` is the DC term
            (PLY ``f_dc_*``), ``sh[:, 1:]`` the rest (PLY ``f_rest_*`` is channel-major).
    """

    means: F32
    quats: F32
    log_scales: F32
    logit_opacities: F32
    sh: F32

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """Degree of the stored SH (0..3)."""
        return math.isqrt(int(self.sh.shape[1])) - 1

    def columns(self) -> tuple[F32, F32, F32, F32, F32]:
        """``(means, quats, log_scales, logit_opacities, sh)``."""
        return (self.means, self.quats, self.log_scales, self.logit_opacities, self.sh)

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> SplatArrays:
        """The Gaussians chosen by an index array or a bool mask ``[N]``."""
        return SplatArrays(*(np.ascontiguousarray(c[index]) for c in self.columns()))

    def non_finite_rows(self) -> NDArray[np.intp]:
        """Indices of Gaussians with any NaN or infinite parameter."""
        bad = np.zeros(len(self), dtype=bool)
        for column in self.columns():
            bad |= ~np.isfinite(column.reshape(len(self), -1)).all(axis=1)
        return np.flatnonzero(bad)

    def with_sh_degree(self, degree: int) -> SplatArrays:
        """A copy keeping SH bands up to ``degree`` (no higher than the stored degree)."""
        k = sh_coefficients(min(degree, self.sh_degree))
        return SplatArrays(self.means, self.quats, self.log_scales, self.logit_opacities,
                           np.ascontiguousarray(self.sh[:, :k]))  # fmt: skip

    @classmethod
    def from_splats(cls, splats: Splats) -> SplatArrays:
        """The float32 CPU arrays of torch :class:`~pipeline.splats.Splats`."""
        return cls(*(np.ascontiguousarray(t.detach().cpu().float().numpy())
                     for t in splats.tensors()))  # fmt: skip

    def to_splats(self) -> Splats:
        """These arrays as torch :class:`~pipeline.splats.Splats` (imports torch)."""
        import torch

        from pipeline.splats import Splats

        return Splats(*(torch.from_numpy(np.ascontiguousarray(c)) for c in self.columns()))
