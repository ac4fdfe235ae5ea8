"""EWA projection of 3D Gaussians to screen-space ellipses (pinhole, OpenCV camera).

The maths follows gsplat 1.5.3's reference implementation so that every backend agrees:
the Jacobian is evaluated with the centre clamped to 1.3× the field of view, ``eps2d`` is added
to the 2D covariance, and the screen bounding box is ``ceil(3.33 σ)`` per axis, which is exactly
where a Gaussian's alpha falls below 1/255 for any opacity ≤ 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.render.types import Camera, Gaussians

__all__ = ["Projection", "project", "quat_to_rotmat"]

# Half-width of the bounding box in standard deviations: exp(-0.5 * 3.33**2) < 1/255.
BBOX_SIGMAS = 3.33


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices ``[N, 3, 3]`` from quaternions ``[N, 4]`` (w, x, y, z), normalised."""
    q = torch.nn.functional.normalize(quats, dim=-1)
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape((*q.shape[:-1], 3, 3))


@dataclass
class Projection:
    """Screen-space footprint of every Gaussian for one camera.

    Attributes:
        means2d: ``[N, 2]`` projected centres, pixels (meaningless where ``radii == 0``; for
            centres at or behind the near plane they are computed as if at depth 1).
        conics: ``[N, 3]`` upper triangle ``(a, b, c)`` of the inverse 2D covariance, so that
            the Gaussian's exponent at offset ``(dx, dy)`` is
            ``-(0.5 * (a dx² + c dy²) + b dx dy)``.
        depths: ``[N]`` camera-space z of the centres.
        radii: ``[N, 2]`` int32 bounding-box half-extents (x, y) in pixels, 0 when culled.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor


def project(
    gaussians: Gaussians,
    camera: Camera,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> Projection:
    """Project Gaussians into ``camera``; differentiable w.r.t. means, quats and scales."""
    R = camera.world_to_camera[:3, :3].to(gaussians.means.dtype)
    t = camera.world_to_camera[:3, 3].to(gaussians.means.dtype)
    K = camera.K.to(gaussians.means.dtype)
    means_c = gaussians.means @ R.T + t
    M = quat_to_rotmat(gaussians.quats) * gaussians.scales.unsqueeze(-2)
    cov_world = M @ M.transpose(-1, -2)
    cov_cam = R @ cov_world @ R.T
    depths = means_c[:, 2]
    # Gaussians at or behind the near plane are culled; projecting them as if at depth 1 keeps
    # their (zero) gradients finite instead of 0 · inf = NaN when a centre sits at z = 0.
    safe_z = torch.where(depths.detach() > near_plane, depths, torch.ones_like(depths))
    means_c_safe = torch.cat([means_c[:, :2], safe_z.unsqueeze(-1)], dim=-1)
    means2d, cov2d = _perspective(means_c_safe, cov_cam, K, camera.width, camera.height)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det = (a * c - b * b).clamp(min=1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    radii = _bbox_radii(means2d, a.detach(), c.detach(), depths.detach(), camera,
                        near_plane, far_plane)  # fmt: skip
    return Projection(means2d, conics, depths, radii)


def _perspective(
    means_c: Tensor, cov_cam: Tensor, K: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """Pinhole projection of centres ``[N, 3]`` and covariances ``[N, 3, 3]`` (camera frame)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x, y, z = means_c.unbind(-1)
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z * torch.clamp(x / z, min=-lim_x_neg, max=lim_x_pos)
    ty = z * torch.clamp(y / z, min=-lim_y_neg, max=lim_y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack(
        [fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)], dim=-1
    ).reshape(-1, 2, 3)
    cov2d = J @ cov_cam @ J.transpose(-1, -2)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    return means2d, cov2d


def _bbox_radii(
    means2d: Tensor,
    var_x: Tensor,
    var_y: Tensor,
    depths: Tensor,
    camera: Camera,
    near_plane: float,
    far_plane: float,
) -> Tensor:
    """Bounding-box half-extents ``[N, 2]`` (int32), zeroed for culled Gaussians."""
    radius = torch.stack(
        [torch.ceil(BBOX_SIGMAS * var_x.sqrt()), torch.ceil(BBOX_SIGMAS * var_y.sqrt())], dim=-1
    )
    centres = means2d.detach()
    valid = (depths > near_plane) & (depths < far_plane) & torch.isfinite(radius).all(dim=-1)
    inside = (
        (centres[:, 0] + radius[:, 0] > 0)
        & (centres[:, 0] - radius[:, 0] < camera.width)
        & (centres[:, 1] + radius[:, 1] > 0)
        & (centres[:, 1] - radius[:, 1] < camera.height)
    )
    keep = (valid & inside).unsqueeze(-1)
    return torch.where(keep, radius, torch.zeros_like(radius)).to(torch.int32)
