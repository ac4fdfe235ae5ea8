"""The Gaussians training starts from (splatfacto's initialisation).

From SfM points: one Gaussian per point, isotropic with the log of the mean distance to its
three nearest neighbours as log-scale, a uniformly random rotation, the point's colour as DC
term (higher SH zero) and opacity ``init_opacity``. Without points: ``random_init_points``
Gaussians where the cameras look, each on the ray of a random pixel of a random training view at
a random depth up to ``random_init_scale`` camera extents, with random DC coefficients in [0, 1).
splatfacto fills a cube 10 units wide around the scene instead; in the camera frusta no Gaussian
is wasted on space no view sees (on the synthetic scene splatfacto's cube ended at 9.2 dB
held-out PSNR after 500 CPU steps, below a flat mean-colour image's 17.6 dB).

With ``fill_uncovered_points`` (the CPU profile; the reference recipe has 0), SfM points are
topped up where they leave the training views empty: each view is cut into ``FILL_GRID`` (8)
cells along its longer side; in the views where at least ``FILL_MIN_EMPTY`` (a quarter) of the
cells have no point projecting into them, Gaussians are added on rays through those cells at
random depths up to the deepest point that view sees, coloured by the pixel they are on.
Structure from motion on a weakly textured capture triangulates only part of the scene (on the
synthetic room: the striped walls, none of the floor or the spheres, 52-67 % of every view's
cells empty); densification only grows Gaussians from existing ones, so a short run never fills
those parts (20 photos, 600 steps: held-out PSNR 11.7 dB from SfM poses, below the flat image's
14.8 dB; with the top-up 17.8 dB). Views that the points cover but for small gaps are left
alone: topping up the synthetic job's (at most 8 % of cells empty, 150 Gaussians added) cost
2-4 dB there (24.9-26.8 against 28.9 dB after 1,000 steps), as Gaussians at random depths
float in front of the surfaces; with the quarter threshold that job adds none.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from pipeline.errors import InputError
from pipeline.render.sh import rgb_to_sh
from pipeline.render.types import num_sh_bases
from pipeline.scene import SceneData, View
from pipeline.splats import Splats
from pipeline.train.config import TrainConfig

__all__ = ["camera_extent", "initial_splats", "knn_log_scales", "random_unit_quats"]

# Coincident SfM points would give a zero neighbour distance; floor it (world units).
MIN_INIT_SCALE = 1e-7

#: Cells along the longer image side when looking for parts of views no SfM point covers.
FILL_GRID = 8
#: Only views with at least this share of their cells empty are topped up.
FILL_MIN_EMPTY = 0.25


def initial_splats(scene: SceneData, config: TrainConfig, generator: torch.Generator) -> Splats:
    """Initial CPU float32 splats for ``scene`` (randomness from the CPU ``generator``)."""
    points, colors = _checked_points(scene)
    if len(points) == 0:
        return _random_splats(scene.train, config, generator)
    if config.max_init_points is not None and len(points) > config.max_init_points:
        chosen = torch.randperm(len(points), generator=generator)[: config.max_init_points]
        chosen = chosen.sort().values
        points, colors = points[chosen], colors[chosen]
    _, extent = camera_extent(scene.train)
    if config.fill_uncovered_points:
        extra, extra_colors = _fill_uncovered(points, scene.train, config, extent, generator)
        points, colors = torch.cat([points, extra]), torch.cat([colors, extra_colors])
    sh = torch.zeros(len(points), num_sh_bases(config.sh_degree), 3)
    sh[:, 0] = rgb_to_sh(colors.float() / 255.0)
    return _splats(points, knn_log_scales(points, fallback=0.01 * extent), sh, config, generator)


def _fill_uncovered(
    points: Tensor,
    views: list[View],
    config: TrainConfig,
    extent: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """``([n, 3] float32 points, [n, 3] uint8 colours)`` where the points leave training views
    empty (see the module doc): each view is cut into ``FILL_GRID`` cells along its longer side;
    ``n`` is ``fill_uncovered_points`` times the share of all cells that no point projects
    into; each new point is on the ray of a uniformly random pixel of a uniformly random empty
    cell, at a depth uniform in ``(0, far]`` (``far``: the deepest point that view sees, else
    ``random_init_scale`` camera extents), with that pixel's colour."""
    fallback_far = config.random_init_scale * extent
    found = [_empty_cells(points, view, fallback_far) for view in views]
    candidates = torch.cat(
        [
            torch.stack([torch.full_like(cells[:, 0], index), cells[:, 1], cells[:, 0]], 1)
            for index, (cells, _) in enumerate(found)
        ]
    )  # [E, 3] int64: (view, column, row) of every empty cell
    grids = torch.tensor([_fill_grid(v.camera.width, v.camera.height) for v in views])  # [V, 2]
    total = int(grids.prod(dim=1).sum())
    n = round(config.fill_uncovered_points * len(candidates) / max(total, 1))
    if n == 0:
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8)
    chosen = candidates[torch.randint(len(candidates), (n,), generator=generator)]
    jitter = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    share = 1.0 - torch.rand(n, generator=generator, dtype=torch.float64)
    which = chosen[:, 0]
    sizes = torch.tensor([[v.camera.width, v.camera.height] for v in views], dtype=torch.float64)
    pixel = (chosen[:, 1:].double() + jitter) * sizes[which] / grids[which].double()
    depth = share * torch.tensor([far for _, far in found], dtype=torch.float64)[which]
    return _unproject(pixel, depth, views, which).float(), _pixel_colours(pixel, views, which)


def _empty_cells(points: Tensor, view: View, fallback_far: float) -> tuple[Tensor, float]:
    """``(cells [E, 2] int64 (row, column), far)``: the cells of ``view``'s coverage grid no
    point projects into (none when fewer than ``FILL_MIN_EMPTY`` of them are empty: small gaps
    fill in by densification), and the depth of the deepest point it sees (``fallback_far``
    when it sees none; world units)."""
    cam = view.camera
    cols, rows = _fill_grid(cam.width, cam.height)
    uv, depth = _project(points, cam.K, cam.world_to_camera)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0)
    inside &= (uv[:, 1] < cam.height) & (depth > 0)
    covered = torch.zeros(rows, cols, dtype=torch.bool)
    column = (uv[inside, 0] * cols / cam.width).long().clamp(0, cols - 1)
    row = (uv[inside, 1] * rows / cam.height).long().clamp(0, rows - 1)
    covered[row, column] = True
    empty = (~covered).nonzero()
    if len(empty) < FILL_MIN_EMPTY * rows * cols:
        empty = empty[:0]
    seen = depth[inside]
    return empty, float(seen.max()) if len(seen) else fallback_far


def _unproject(pixel: Tensor, depth: Tensor, views: list[View], which: Tensor) -> Tensor:
    """World points ``[n, 3]`` (float64) at camera-frame ``depth`` ``[n]`` on the rays through
    ``pixel`` ``[n, 2]`` (pixel units) of the views ``which`` ``[n]`` indexes."""
    K = torch.stack([v.camera.K.detach().cpu().double() for v in views])[which]
    w2c = torch.stack([v.camera.world_to_camera.detach().cpu().double() for v in views])[which]
    homogeneous = torch.cat([pixel, torch.ones(len(pixel), 1, dtype=torch.float64)], dim=-1)
    ray = torch.linalg.solve(K, homogeneous.unsqueeze(-1)).squeeze(-1)
    local = ray / ray[:, 2:] * depth[:, None]
    rotation, translation = w2c[:, :3, :3], w2c[:, :3, 3]
    world: Tensor = (rotation.transpose(1, 2) @ (local - translation).unsqueeze(-1)).squeeze(-1)
    return world


def _pixel_colours(pixel: Tensor, views: list[View], which: Tensor) -> Tensor:
    """``[n, 3]`` uint8 RGB of the training image of view ``which[i]`` at ``pixel[i]``."""
    colours = torch.empty(len(pixel), 3, dtype=torch.uint8)
    for view_index in sorted(set(which.tolist())):
        mine = which == view_index
        image = views[view_index].image
        u = pixel[mine, 0].long().clamp(0, image.shape[1] - 1)
        v = pixel[mine, 1].long().clamp(0, image.shape[0] - 1)
        colours[mine] = image[v, u, :3].to(torch.uint8)
    return colours


def _fill_grid(width: int, height: int) -> tuple[int, int]:
    """``(columns, rows)`` of the coverage grid: ``FILL_GRID`` cells along the longer side."""
    if width >= height:
        return FILL_GRID, max(1, round(FILL_GRID * height / width))
    return max(1, round(FILL_GRID * width / height)), FILL_GRID


def _project(points: Tensor, K: Tensor, world_to_camera: Tensor) -> tuple[Tensor, Tensor]:
    """``(uv [P, 2], depth [P])`` of world points in a pinhole camera (float64; ``uv`` is
    meaningless where ``depth ≤ 0``)."""
    w2c = world_to_camera.detach().cpu().double()
    local = points.detach().cpu().double() @ w2c[:3, :3].T + w2c[:3, 3]
    depth = local[:, 2]
    safe = torch.where(depth.abs() > 1e-12, depth, torch.full_like(depth, 1e-12))
    uv = (local / safe[:, None]) @ K.detach().cpu().double().T
    return uv[:, :2], depth


def _checked_points(scene: SceneData) -> tuple[Tensor, Tensor]:
    points, colors = scene.points, scene.point_colors
    if points.dim() != 2 or points.shape[-1] != 3:
        raise InputError(f"scene points must be [P, 3], got {list(points.shape)}")
    if colors.shape != points.shape:
        raise InputError(
            f"scene point colours {list(colors.shape)} do not match points {list(points.shape)}"
        )
    points = points.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(points).all()):
        raise InputError("scene points contain non-finite coordinates")
    return points, colors.detach().cpu()


def _random_splats(views: list[View], config: TrainConfig, generator: torch.Generator) -> Splats:
    _, extent = camera_extent(views)
    n = config.random_init_points
    means = _points_in_view(views, n, config.random_init_scale * extent, generator)
    sh = torch.zeros(n, num_sh_bases(config.sh_degree), 3)
    sh[:, 0] = torch.rand(n, 3, generator=generator)
    return _splats(means, knn_log_scales(means, fallback=0.01 * extent), sh, config, generator)


def _points_in_view(views: list[View], n: int, far: float, generator: torch.Generator) -> Tensor:
    """``[n, 3]`` float32 world points where the cameras look: each on the ray through a uniformly
    random pixel of a uniformly random view, at a depth uniform in ``(0, far]`` (world units,
    along the camera's +z) in front of it."""
    index = torch.randint(len(views), (n,), generator=generator)
    uv = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    depth = (1.0 - torch.rand(n, generator=generator, dtype=torch.float64)) * far
    cams = [v.camera for v in views]
    sizes = torch.tensor([[c.width, c.height] for c in cams], dtype=torch.float64)[index]
    K = torch.stack([c.K.detach().cpu().double() for c in cams])[index]
    w2c = torch.stack([c.world_to_camera.detach().cpu().double() for c in cams])[index]
    pixel = torch.cat([uv * sizes, torch.ones(n, 1, dtype=torch.float64)], dim=-1)
    ray = torch.linalg.solve(K, pixel.unsqueeze(-1)).squeeze(-1)
    local = ray / ray[:, 2:] * depth.unsqueeze(-1)
    rotation, translation = w2c[:, :3, :3], w2c[:, :3, 3]
    world = (rotation.transpose(1, 2) @ (local - translation).unsqueeze(-1)).squeeze(-1)
    result: Tensor = world.float()
    return result


def _splats(
    means: Tensor, log_scale: Tensor, sh: Tensor, config: TrainConfig, generator: torch.Generator
) -> Splats:
    n = len(means)
    logit = math.log(config.init_opacity / (1.0 - config.init_opacity))
    return Splats(
        means=means.float(),
        quats=random_unit_quats(n, generator),
        log_scales=log_scale.float().unsqueeze(-1).repeat(1, 3),
        logit_opacities=torch.full((n,), logit),
        sh=sh.float(),
    )


def knn_log_scales(points: Tensor, k: int = 3, fallback: float = 1.0) -> Tensor:
    """``[P]`` log of each point's mean distance to its ``k`` nearest other points.

    With fewer than ``k`` other points the available ones are used; a lone point gets
    ``log(fallback)``.
    """
    if len(points) < 2:
        return torch.full((len(points),), math.log(fallback))
    neighbours = min(k, len(points) - 1)
    data = points.detach().cpu().double().numpy()
    distances, _ = cKDTree(data).query(data, k=neighbours + 1)
    mean = np.asarray(distances)[:, 1:].mean(axis=-1)
    return torch.from_numpy(np.log(np.maximum(mean, MIN_INIT_SCALE))).float()


def random_unit_quats(n: int, generator: torch.Generator) -> Tensor:
    """``[n, 4]`` rotations uniform over SO(3) (Shoemake's method), ``(w, x, y, z)``."""
    u, v, w = torch.rand(3, n, generator=generator, dtype=torch.float64)
    a, b = torch.sqrt(1.0 - u), torch.sqrt(u)
    quats = torch.stack(
        [a * torch.sin(2 * math.pi * v), a * torch.cos(2 * math.pi * v),
         b * torch.sin(2 * math.pi * w), b * torch.cos(2 * math.pi * w)],
        dim=-1,
    )  # fmt: skip
    return quats.float()


def camera_extent(views: list[View]) -> tuple[Tensor, float]:
    """Mean camera centre ``[3]`` and the largest distance of a camera from it (world units).

    No spread (a single camera, or none) gives an extent of 1.
    """
    if not views:
        return torch.zeros(3), 1.0
    centres = torch.stack([v.camera.camera_center.detach().cpu().float() for v in views])
    centre = centres.mean(dim=0)
    extent = float((centres - centre).norm(dim=-1).max())
    return centre, extent if extent > 1e-6 else 1.0
