"""Data types shared by every rasterizer backend.

Coordinate frames and conventions (the same as gsplat's):

- **World**: the frame the Gaussians live in (the COLMAP world during training).
- **Camera**: OpenCV convention, +x right, +y down, +z forward; ``world_to_camera`` maps world
  points into it.
- **Pixels**: ``(u, v)`` with ``u`` along image columns and ``v`` along rows; the centre of the
  pixel in row ``i`` and column ``j`` is at ``(j + 0.5, i + 0.5)`` (COLMAP's convention too).
- **Quaternions**: ``(w, x, y, z)``, any non-zero length (normalised by the renderer).
- **Spherical harmonics**: real SH of degree 0..3 in the INRIA/gsplat basis order, coefficient
  ``k`` of colour channel ``c`` at ``sh[:, k, c]``; the colour seen along direction ``d`` (from
  the camera centre towards the Gaussian) is ``max(SH(d) + 0.5, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

__all__ = [
    "BackendName",
    "Camera",
    "Gaussians",
    "Rasterizer",
    "RenderOutput",
    "RenderSettings",
    "num_sh_bases",
]

BackendName = Literal["cpu", "gsplat"]

# Viewer background outside training (splatfacto's "random" background at eval time).
EVAL_BACKGROUND = (0.1490, 0.1647, 0.2157)


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients per colour channel for ``degree`` (1, 4, 9 or 16)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    return (degree + 1) ** 2


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes:
        world_to_camera: ``[4, 4]`` rigid transform, world → camera (OpenCV axes).
        K: ``[3, 3]`` intrinsics in pixels: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
        width: image width in pixels.
        height: image height in pixels.
    """

    world_to_camera: Tensor
    K: Tensor
    width: int
    height: int

    @property
    def camera_center(self) -> Tensor:
        """Camera centre in world coordinates, ``[3]``."""
        rotation = self.world_to_camera[:3, :3]
        return -rotation.T @ self.world_to_camera[:3, 3]

    def scaled(self, factor: float) -> Camera:
        """The same camera with the image resized by ``factor`` (e.g. 0.5 halves it)."""
        K = self.K.clone()
        K[:2] *= factor
        return Camera(
            self.world_to_camera,
            K,
            max(1, round(self.width * factor)),
            max(1, round(self.height * factor)),
        )


@dataclass
class Gaussians:
    """Activated Gaussian parameters, as a rasterizer consumes them.

    Attributes:
        means: ``[N, 3]`` centres, world units.
        quats: ``[N, 4]`` orientations ``(w, x, y, z)``, any non-zero length.
        scales: ``[N, 3]`` standard deviations along the local axes, world units (``exp`` of
            the stored log-scales).
        opacities: ``[N]`` opacity in ``(0, 1)`` (``sigmoid`` of the stored logits).
        sh: ``[N, K, 3]`` SH coefficients, ``K = (d + 1)**2`` for a degree ``d`` ≥ the degree
            rendered; ``sh[:, 0]`` is the DC term.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def detach(self) -> Gaussians:
        """A copy cut from the autograd graph."""
        return Gaussians(
            self.means.detach(),
            self.quats.detach(),
            self.scales.detach(),
            self.opacities.detach(),
            self.sh.detach(),
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Gaussians:
        """All tensors moved to ``device`` (and floating tensors cast to ``dtype``)."""
        return Gaussians(*(t.to(device=device, dtype=dtype or t.dtype) for t in self._tensors()))

    def _tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return (self.means, self.quats, self.scales, self.opacities, self.sh)


@dataclass(frozen=True)
class RenderSettings:
    """How to render.

    Attributes:
        sh_degree: SH degree to evaluate (0..3), at most the degree stored in ``Gaussians.sh``.
        background: RGB in [0, 1] composited behind the Gaussians.
        near_plane: Gaussians with camera depth ≤ this are culled (world units).
        far_plane: Gaussians with camera depth ≥ this are culled (world units).
        eps2d: added to the diagonal of every 2D covariance (pixels², low-pass filter).
        absgrad: also accumulate ``means2d.absgrad`` (sum over pixels of the absolute
            per-pixel gradients, ``[N, 2]``) during backward, for densification.
    """

    sh_degree: int = 3
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    near_plane: float = 0.01
    far_plane: float = 1e10
    eps2d: float = 0.3
    absgrad: bool = False


@dataclass
class RenderOutput:
    """What a rasterizer returns for one camera.

    Attributes:
        rgb: ``[H, W, 3]`` colour composited over the background.
        alpha: ``[H, W, 1]`` accumulated opacity in [0, 1].
        depth: ``[H, W, 1]`` accumulated camera depth ``Σ w_i z_i`` (divide by ``alpha`` for
            the expected depth).
        means2d: ``[N, 2]`` projected centres in pixels. It is part of the autograd graph:
            call ``means2d.retain_grad()`` before backward to read ``means2d.grad``; with
            ``RenderSettings.absgrad`` the backend also sets ``means2d.absgrad``.
        radii: ``[N, 2]`` int32 half-extents in pixels of each Gaussian's screen bounding box
            (x, y); ``0`` where the Gaussian was culled.
        depths: ``[N]`` camera depth of each centre (world units).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    means2d: Tensor
    radii: Tensor
    depths: Tensor

    @property
    def visible(self) -> Tensor:
        """``[N]`` bool: Gaussians that touched the image."""
        return (self.radii > 0).all(dim=-1)


class Rasterizer(Protocol):
    """One rasterizer backend. Implementations: ``cpu`` (this project's), ``gsplat`` (CUDA)."""

    name: BackendName

    @property
    def device(self) -> torch.device:
        """Device the backend wants its tensors on."""
        ...

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        """Render one view; differentiable w.r.t. every tensor in ``gaussians``."""
        ...
