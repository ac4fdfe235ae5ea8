"""Rotating real spherical-harmonic coefficients (the Wigner-D matrices of the real basis).

Each SH band ``l`` spans a space that rotations map onto itself, so turning the world by ``R``
turns the ``2l + 1`` coefficients of band ``l`` by a ``(2l+1) × (2l+1)`` matrix. Rather than
transcribe closed-form Wigner recurrences (easy to get wrong in one sign for this basis order),
the matrix is *solved for* in float64: for well-spread sample directions ``d``, the rotated
function must satisfy ``f'(d) = f(Rᵀ d)``, a small exactly-determined linear system per band,
built from :func:`pipeline.render.sh.sh_basis` itself, so it is right for whatever basis order
the renderer uses. The fit's residual is checked to be at rounding level.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from pipeline.render.sh import sh_basis

__all__ = ["rotate_sh", "sh_band_rotation", "sh_rotation_matrix"]

_SAMPLE_DIRECTIONS = 64  # ≥ 7 (the widest band); more makes the least-squares fit robust.


def _fibonacci_sphere(n: int) -> Tensor:
    """``[n, 3]`` unit vectors spread evenly over the sphere (float64)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = torch.sqrt(1.0 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1)


def sh_band_rotation(R: ArrayLike, band: int) -> NDArray[np.float64]:
    """Matrix ``X`` ``[2l+1, 2l+1]`` with ``coeffs_rotated = X @ coeffs`` for SH band ``l``.

    ``R`` is the world rotation (``[3, 3]``, proper). After the update, the band evaluated at
    ``R @ d`` equals the original band evaluated at ``d`` for every direction ``d``.
    """
    if not 0 <= band <= 3:
        raise ValueError(f"SH band must be 0..3, got {band}")
    M = torch.as_tensor(np.asarray(R, dtype=np.float64))
    dirs = _fibonacci_sphere(_SAMPLE_DIRECTIONS)
    lo, hi = band * band, (band + 1) ** 2
    basis = sh_basis(band, dirs)[:, lo:hi]  # Y(d)        [S, 2l+1]
    basis_back = sh_basis(band, dirs @ M)[:, lo:hi]  # Y(Rᵀ d)  [S, 2l+1] (row vectors: d @ R)
    # f'(d) = c'·Y(d) must equal f(Rᵀ d) = c·Y(Rᵀ d) at every sample: basis @ c' = basis_back @ c,
    # so c' = X c with basis @ X = basis_back.
    solution = torch.linalg.lstsq(basis, basis_back).solution
    residual = float((basis @ solution - basis_back).abs().max())
    if residual > 1e-9:
        raise ValueError(f"SH band {band} rotation fit failed (residual {residual:.2e})")
    return np.asarray(solution.numpy(), dtype=np.float64)


def sh_rotation_matrix(R: ArrayLike, degree: int) -> NDArray[np.float64]:
    """Block-diagonal ``[K, K]`` rotation of all coefficients up to ``degree``, ``K=(d+1)²``."""
    K = (degree + 1) ** 2
    full = np.zeros((K, K))
    for band in range(degree + 1):
        lo, hi = band * band, (band + 1) ** 2
        full[lo:hi, lo:hi] = sh_band_rotation(R, band)
    return full


def rotate_sh(sh: Tensor, R: ArrayLike) -> Tensor:
    """SH coefficients ``[N, K, 3]`` re-expressed for the world rotated by ``R`` (same dtype).

    The DC term (band 0) is unchanged; bands 1..3 mix within themselves. The matrix is derived
    in float64 and applied in ``sh``'s dtype (float32 storage gains nothing from more).
    """
    degree = math.isqrt(int(sh.shape[1])) - 1
    if (degree + 1) ** 2 != sh.shape[1]:
        raise ValueError(f"SH coefficient count {sh.shape[1]} is not a square of 1..4")
    X = torch.as_tensor(sh_rotation_matrix(R, degree), dtype=sh.dtype, device=sh.device)
    n, k = sh.shape[0], sh.shape[1]
    # [N, K, 3] -> rows of K coefficients, one per (Gaussian, channel): one matrix product.
    rows = sh.detach().transpose(1, 2).reshape(n * 3, k)
    return (rows @ X.T).reshape(n, 3, k).transpose(1, 2).contiguous()
