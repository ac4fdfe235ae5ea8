"""A synthetic but trained-splat-like scene for renderer benchmarks.

A camera stands inside a room (8 × 4 × 9 world units) and looks across it: the back wall, both
side walls, floor and ceiling fill the frame, and eight spheres in front of the back wall hide
parts of it. Gaussians lie on those surfaces (area-uniform, only where the camera can see the
surface position, occluded or not), flattened along the surface normal (normal σ = 0.1 × the
tangent σ), anisotropic in the tangent plane with log-normal sizes, opacities drawn like a
trained model's (mostly high, a tail of faint ones), and degree-3 SH colours. The tangent size
follows the Gaussian count so that the surface is covered about equally thickly at any count:
most pixels end at alpha > 0.95 with tens of Gaussians over each pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from pipeline.export.rotate import quat_multiply
from pipeline.render.composite import prepare_footprints
from pipeline.render.kernels import OPACITY, TILE, A, B, C, X, Y
from pipeline.render.projection import project
from pipeline.render.tile_rasterizer import TileRasterizer
from pipeline.render.tiles import bin_gaussians
from pipeline.render.types import Camera, Gaussians, RenderSettings

__all__ = ["SceneStats", "look_at_camera", "room_camera", "room_gaussians", "scene_stats"]

# (centre, radius) of the spheres standing in the room.
_SPHERES = (
    ((-2.2, 0.7, 3.5), 0.8),
    ((-0.6, 0.9, 4.5), 0.6),
    ((1.0, 0.5, 3.0), 1.0),
    ((2.6, 0.9, 4.8), 0.6),
    ((0.2, -0.6, 5.2), 0.5),
    ((-1.4, 1.1, 1.8), 0.4),
    ((1.9, 1.1, 1.5), 0.4),
    ((-3.0, -0.8, 5.0), 0.7),
)
# Axis-aligned room: x ∈ [-4, 4], y ∈ [-2.5, 1.5] (y down), z ∈ [-3, 6].
_ROOM_LO = (-4.0, -2.5, -3.0)
_ROOM_HI = (4.0, 1.5, 6.0)
# Mean number of Gaussians whose 1σ disc covers a surface point.
_COVERAGE = 2.0


def room_camera(width: int = 1280, height: int = 720, fov_y_deg: float = 60.0) -> Camera:
    """The benchmark camera: inside the room near its front wall, looking at the far wall."""
    return look_at_camera((0.3, -0.3, -2.5), (0.0, 0.2, 6.0), width, height, fov_y_deg)


def look_at_camera(eye: tuple[float, ...], target: tuple[float, ...], width: int = 1280,
                   height: int = 720, fov_y_deg: float = 60.0) -> Camera:  # fmt: skip
    """A pinhole camera at ``eye`` looking at ``target`` (world units, the room's frame: +y is
    down, so image-down follows world +y), ``width`` × ``height`` pixels, vertical field of view
    ``fov_y_deg`` degrees, principal point at the image centre."""
    e, t = torch.tensor(eye, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
    forward = (t - e) / (t - e).norm()
    right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), forward)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3], w2c[:3, 3] = R, -R @ e
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float64)
    return Camera(w2c, K, width, height)


def room_gaussians(n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Gaussians:
    """``n`` Gaussians on the room's surfaces, all inside the benchmark camera's view."""
    g = torch.Generator().manual_seed(seed)
    camera = room_camera()
    points, normals = _visible_surface_points(n, camera, g)
    area = _visible_area(camera, g)
    sigma = math.sqrt(_COVERAGE * area / (n * math.pi))
    tangent = sigma * torch.exp(0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64))
    scales = torch.cat([tangent, 0.1 * tangent.min(dim=-1, keepdim=True).values], dim=-1)
    logits = 2.0 + 2.0 * torch.randn(n, generator=g, dtype=torch.float64)
    sh = 0.05 * torch.randn(n, 16, 3, generator=g, dtype=torch.float64)
    sh[:, 0] = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 2.0
    gaussians = Gaussians(
        means=points,
        quats=_surface_quats(normals, g),
        scales=scales,
        opacities=torch.sigmoid(logits),
        sh=sh,
    )
    return gaussians.to("cpu", dtype)


def _surface_samples(m: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """``m`` area-uniform points ``[m, 3]`` and unit normals on the walls and spheres."""
    lo, hi = (
        torch.tensor(_ROOM_LO, dtype=torch.float64),
        torch.tensor(_ROOM_HI, dtype=torch.float64),
    )
    size = hi - lo
    faces = []  # (fixed axis, value, inward normal sign, area)
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        face_area = float(size[others[0]] * size[others[1]])
        faces += [(axis, float(lo[axis]), 1.0, face_area), (axis, float(hi[axis]), -1.0, face_area)]
    areas = torch.tensor(
        [f[3] for f in faces] + [4 * math.pi * r * r for _, r in _SPHERES], dtype=torch.float64
    )
    which = torch.multinomial(areas, m, replacement=True, generator=g)
    points = lo + torch.rand(m, 3, generator=g, dtype=torch.float64) * size
    normals = torch.zeros(m, 3, dtype=torch.float64)
    for i, (axis, value, sign, _) in enumerate(faces):
        rows = which == i
        points[rows, axis] = value
        normals[rows, axis] = sign
    for j, (centre, radius) in enumerate(_SPHERES):
        rows = which == len(faces) + j
        d = torch.nn.functional.normalize(
            torch.randn(int(rows.sum()), 3, generator=g, dtype=torch.float64), dim=-1
        )
        points[rows] = torch.tensor(centre, dtype=torch.float64) + radius * d
        normals[rows] = d
    return points, normals


def _in_view(points: Tensor, camera: Camera) -> Tensor:
    """``[m]`` bool: the point projects inside the image, in front of the camera."""
    cam = points @ camera.world_to_camera[:3, :3].T + camera.world_to_camera[:3, 3]
    z = cam[:, 2].clamp(min=1e-6)
    u = camera.K[0, 0] * cam[:, 0] / z + camera.K[0, 2]
    v = camera.K[1, 1] * cam[:, 1] / z + camera.K[1, 2]
    return (cam[:, 2] > 0.05) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)


def _visible_surface_points(n: int, camera: Camera, g: torch.Generator) -> tuple[Tensor, Tensor]:
    kept_p, kept_n, total = [], [], 0
    while total < n:
        points, normals = _surface_samples(4 * n, g)
        keep = _in_view(points, camera)
        kept_p.append(points[keep])
        kept_n.append(normals[keep])
        total += int(keep.sum())
    return torch.cat(kept_p)[:n], torch.cat(kept_n)[:n]


def _visible_area(camera: Camera, g: torch.Generator, samples: int = 200_000) -> float:
    """Monte-Carlo estimate of the surface area inside the view frustum (world units²)."""
    points, _ = _surface_samples(samples, g)
    lo, hi = _ROOM_LO, _ROOM_HI
    walls = 2 * sum((hi[a] - lo[a]) * (hi[b] - lo[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    total = walls + sum(4 * math.pi * r * r for _, r in _SPHERES)
    return total * float(_in_view(points, camera).double().mean())


def _surface_quats(normals: Tensor, g: torch.Generator) -> Tensor:
    """Quaternions ``[n, 4]`` (w, x, y, z) turning local z onto the normal, random spin about it."""
    w = 1.0 + normals[:, 2]
    align = torch.stack([w, -normals[:, 1], normals[:, 0], torch.zeros_like(w)], dim=-1)
    flipped = w < 1e-9  # normal = -z: any half turn about a perpendicular axis
    align[flipped] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    align = torch.nn.functional.normalize(align, dim=-1)
    half = torch.rand(normals.shape[0], generator=g, dtype=torch.float64) * math.pi
    spin = torch.stack([half.cos(), torch.zeros_like(half), torch.zeros_like(half), half.sin()], -1)
    return quat_multiply(align, spin)


@dataclass(frozen=True)
class SceneStats:
    """What one render of a scene looks like (for the benchmark notes).

    Attributes:
        visible: Gaussians that touch the image.
        covered: fraction of pixels with alpha > 0.95.
        overlapping: mean number of Gaussians with alpha ≥ 1/255 at a pixel, occluded or not.
        intersections: (Gaussian, tile) pairs binned.
    """

    visible: int
    covered: float
    overlapping: float
    intersections: int

    def describe(self) -> str:
        return (
            f"{self.visible} visible, {100 * self.covered:.0f}% px alpha>0.95, "
            f"{self.overlapping:.0f} Gaussians/px, {self.intersections / 1e3:.0f}k tile pairs"
        )


def scene_stats(gaussians: Gaussians, camera: Camera) -> SceneStats:
    """Measure :class:`SceneStats` for ``gaussians`` seen from ``camera``."""
    settings = RenderSettings()
    with torch.no_grad():
        out = TileRasterizer().render(gaussians, camera, settings)
        proj = project(gaussians, camera, settings.eps2d, settings.near_plane, settings.far_plane)
        features = torch.zeros(len(gaussians), 4, dtype=gaussians.means.dtype)
        prepared = prepare_footprints(proj.means2d, proj.conics, gaussians.opacities, features)
        bins = bin_gaussians(prepared, proj.depths, out.visible, camera.width, camera.height)
    counts = np.zeros((camera.height, camera.width), dtype=np.int64)
    _count_overlaps(
        prepared, bins.gaussian_ids.numpy(), bins.tile_offsets.numpy(), bins.tiles_x, counts
    )
    return SceneStats(
        visible=int(out.visible.sum()),
        covered=float((out.alpha > 0.95).double().mean()),
        overlapping=float(counts.mean()),
        intersections=bins.num_intersections,
    )


@njit(parallel=True, cache=True)
def _count_overlaps(prepared, ids, offsets, tiles_x, counts):  # type: ignore[no-untyped-def]
    """Per pixel, how many of its tile's Gaussians reach alpha ≥ 1/255 there."""
    height, width = counts.shape
    for tile in prange(offsets.shape[0] - 1):
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        for row in range(row0, min(row0 + TILE, height)):
            for col in range(col0, min(col0 + TILE, width)):
                n = 0
                for k in range(offsets[tile], offsets[tile + 1]):
                    gauss = prepared[ids[k]]
                    dx, dy = gauss[X] - col - 0.5, gauss[Y] - row - 0.5
                    sigma = 0.5 * (gauss[A] * dx * dx + gauss[C] * dy * dy) + gauss[B] * dx * dy
                    if sigma >= 0.0 and gauss[OPACITY] * math.exp(-sigma) >= 1.0 / 255.0:
                        n += 1
                counts[row, col] = n
