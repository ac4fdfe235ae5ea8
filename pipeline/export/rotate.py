"""Rotations between the pipeline's world frames, applied to whole splats.

Frames (all right-handed, same units as the COLMAP model):

- **COLMAP**: the reconstruction's world; the trainer works in it (OpenCV cameras).
- **nerfstudio**: ``COLMAP_TO_NERFSTUDIO @ p``, the frame ``ns-process-data`` writes
  (``applied_transform``, Rx(−90°)); the reference's ``splat.ply`` and previews live here.
- **output**: ``NERFSTUDIO_TO_OUTPUT @ p`` = ``COLMAP_TO_OUTPUT @ p`` (Rz(−90°) of COLMAP),
  the frame of the reference's ``splat_rot.ply`` / ``splat_rot.splat`` (``rotate_ply.py``).

Rotating a splat moves its centres (``R @ mean``), turns its orientation (``q_R ⊗ q``) and, so
that view-dependent colour follows the geometry, rotates SH bands 1–3 too (the reference does
not). Scales and opacities are frame-independent.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from pipeline.export.sh_rotation import rotate_sh
from pipeline.splats import Splats

__all__ = [
    "COLMAP_TO_NERFSTUDIO",
    "COLMAP_TO_OUTPUT",
    "NERFSTUDIO_TO_OUTPUT",
    "as_rotation",
    "axis_rotation",
    "matrix_to_quat",
    "quat_multiply",
    "quat_to_matrix",
    "rotate_quats",
    "rotate_splats",
]

Matrix3 = NDArray[np.float64]

# nerfstudio's applied_transform (colmap_utils, ns-process-data): (x, y, z) -> (x, z, -y).
COLMAP_TO_NERFSTUDIO: Matrix3 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# rotate_ply.py's matrix (trans3 @ trans): (x, y, z) -> (-z, -x, y).
NERFSTUDIO_TO_OUTPUT: Matrix3 = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# Their product, Rz(-90°): (x, y, z) -> (y, -x, z).
COLMAP_TO_OUTPUT: Matrix3 = NERFSTUDIO_TO_OUTPUT @ COLMAP_TO_NERFSTUDIO


def axis_rotation(axis: str, degrees: float) -> Matrix3:
    """Right-handed rotation by ``degrees`` about world axis ``"x"``, ``"y"`` or ``"z"``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # Exact values for multiples of 90° keep permutation matrices free of 6e-17 noise.
    c, s = round(c, 15) + 0.0, round(s, 15) + 0.0
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def as_rotation(R: ArrayLike, tol: float = 1e-6) -> Matrix3:
    """``R`` as a float64 ``[3, 3]`` array, checked to be a proper rotation.

    Raises:
        ValueError: wrong shape, not orthonormal within ``tol``, or a reflection (det −1).
    """
    M = np.asarray(R, dtype=np.float64)
    if M.shape != (3, 3):
        raise ValueError(f"a rotation must be a 3x3 matrix, got shape {M.shape}")
    if not np.allclose(M @ M.T, np.eye(3), atol=tol):
        raise ValueError("matrix is not orthonormal, so not a rotation")
    if np.linalg.det(M) < 0:
        raise ValueError("matrix has determinant -1: a reflection, not a rotation")
    return M


def matrix_to_quat(R: ArrayLike) -> NDArray[np.float64]:
    """Unit quaternion ``(w, x, y, z)`` of a rotation matrix, with ``w ≥ 0``.

    Shepperd's method: the largest of ``w², x², y², z²`` is recovered from the trace terms
    first, so the division is never by a small number.
    """
    M = as_rotation(R)
    trace = float(np.trace(M))
    squares = np.array([1 + trace, 1 + 2 * M[0, 0] - trace, 1 + 2 * M[1, 1] - trace,
                        1 + 2 * M[2, 2] - trace]) / 4  # fmt: skip
    k = int(np.argmax(squares))
    big = math.sqrt(squares[k])
    # 4·q_k·q_j for each j, from the symmetric and antisymmetric parts of M.
    products = {
        0: (4 * big * big, M[2, 1] - M[1, 2], M[0, 2] - M[2, 0], M[1, 0] - M[0, 1]),
        1: (M[2, 1] - M[1, 2], 4 * big * big, M[0, 1] + M[1, 0], M[0, 2] + M[2, 0]),
        2: (M[0, 2] - M[2, 0], M[0, 1] + M[1, 0], 4 * big * big, M[1, 2] + M[2, 1]),
        3: (M[1, 0] - M[0, 1], M[0, 2] + M[2, 0], M[1, 2] + M[2, 1], 4 * big * big),
    }[k]
    q = np.array(products) / (4 * big)
    return q if q[0] >= 0 else -q


def quat_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices ``[..., 3, 3]`` of quaternions ``[..., 4]`` (w, x, y, z), normalised."""
    qa = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(qa / np.linalg.norm(qa, axis=-1, keepdims=True), -1, 0)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return np.stack(rows, axis=-1).reshape((*qa.shape[:-1], 3, 3))


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a ⊗ b`` of quaternions ``[..., 4]`` (w, x, y, z), broadcasting."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def rotate_quats(quats: torch.Tensor, R: ArrayLike) -> torch.Tensor:
    """Orientations ``[N, 4]`` turned by the world rotation ``R``: ``q' = q_R ⊗ q``, unit length.

    Like the reference (SciPy normalises), results are unit quaternions; a zero quaternion
    (which renders as the identity) becomes the identity ``(1, 0, 0, 0)``.
    """
    q64 = quats.detach().to(torch.float64)
    norms = q64.norm(dim=-1, keepdim=True)
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=q64.device)
    unit = torch.where(norms > 0, q64 / norms.clamp_min(1e-300), identity)
    q_R = torch.as_tensor(matrix_to_quat(R), dtype=torch.float64, device=q64.device)
    return quat_multiply(q_R, unit).to(quats.dtype)


def rotate_splats(splats: Splats, R: ArrayLike, rotate_sh_bands: bool = True) -> Splats:
    """The same splats expressed in a frame rotated by ``R`` (``p_new = R @ p_old``).

    Computed in float64 and returned in the input dtype. With ``rotate_sh_bands`` the SH
    bands 1–3 are rotated so that every Gaussian shows the same colour along the rotated view
    direction; without it they are copied unchanged (the reference's behaviour).
    """
    M = as_rotation(R)
    R_t = torch.as_tensor(M, dtype=torch.float64, device=splats.means.device)
    means = (splats.means.detach().to(torch.float64) @ R_t.T).to(splats.means.dtype)
    sh = rotate_sh(splats.sh.detach(), M) if rotate_sh_bands else splats.sh.detach().clone()
    return Splats(
        means=means,
        quats=rotate_quats(splats.quats, M),
        log_scales=splats.log_scales.detach().clone(),
        logit_opacities=splats.logit_opacities.detach().clone(),
        sh=sh,
    )
