"""Real spherical harmonics, degree 0..3, in the basis order used by INRIA 3DGS and gsplat."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["C0", "eval_sh", "rgb_to_sh", "sh_basis", "sh_to_rgb"]

C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """SH basis functions evaluated at unit directions.

    Args:
        degree: 0..3.
        dirs: ``[..., 3]`` unit vectors.

    Returns:
        ``[..., (degree + 1)**2]`` basis values.
    """
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            _C2[0] * x * y,
            _C2[1] * y * z,
            _C2[2] * (2.0 * zz - xx - yy),
            _C2[3] * x * z,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            _C3[0] * y * (3.0 * xx - yy),
            _C3[1] * x * y * z,
            _C3[2] * y * (4.0 * zz - xx - yy),
            _C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            _C3[4] * x * (4.0 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, sh: Tensor, dirs: Tensor) -> Tensor:
    """Raw SH colour (before the ``+0.5`` offset and clamp) along directions.

    Args:
        degree: degree to evaluate; coefficients above it are ignored.
        sh: ``[N, K, 3]`` coefficients with ``K ≥ (degree + 1)**2``.
        dirs: ``[N, 3]`` directions, any length (normalised here; zero stays zero).

    Returns:
        ``[N, 3]``.
    """
    unit = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, unit)
    return (basis.unsqueeze(-1) * sh[:, : basis.shape[-1]]).sum(dim=-2)


def rgb_to_sh(rgb: Tensor) -> Tensor:
    """DC coefficient that renders as ``rgb`` (in [0, 1]) from every direction."""
    return (rgb - 0.5) / C0


def sh_to_rgb(sh_dc: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_sh` (no clamping)."""
    return sh_dc * C0 + 0.5
