"""Trainer test data: tiny synthetic scenes rendered by the dense oracle, random parameters.

The scene is forward-facing and metric (the recipe's thresholds are in metres): a textured
back wall of flat Gaussians at ``z = 0.5`` m that fills every frame (so the random training
background never shows in the targets) and a cloud of small coloured Gaussians in front of it,
seen by a grid of cameras on the plane ``z = -0.75`` m.
"""

from __future__ import annotations

import torch

from pipeline.render.dense import render_dense
from pipeline.render.sh import C0, rgb_to_sh
from pipeline.render.types import Camera, Gaussians, RenderSettings
from pipeline.scene import SceneData, View
from pipeline.scene_frame import estimate_scene_frame
from pipeline.train.config import TrainConfig
from pipeline.train.optim import Optimizers, make_optimizers
from pipeline.train.params import PARAM_NAMES, ParamName, Params, params_from_splats
from tests.pipeline.render.factories import look_at_camera
from tests.support.splats import random_splats

FOV_Y_DEG = 40.0
F64 = torch.float64


def wall_and_cloud_gaussians(n_cloud: int = 60, seed: int = 0) -> Gaussians:
    """Ground truth: a 14×10 wall at ``z = 0.5`` plus ``n_cloud`` Gaussians in front (float64)."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = torch.meshgrid(
        torch.linspace(-1.05, 1.05, 14, dtype=F64),
        torch.linspace(-0.75, 0.75, 10, dtype=F64),
        indexing="ij",
    )
    n_wall = xs.numel()
    wall_means = torch.stack([xs.flatten(), ys.flatten(), torch.full((n_wall,), 0.5)], dim=-1)
    box = torch.tensor([0.75, 0.55, 0.4], dtype=F64)
    cloud_means = (torch.rand(n_cloud, 3, generator=g, dtype=F64) - 0.5) * box
    wall_scales = torch.tensor([0.14, 0.14, 0.005], dtype=F64).repeat(n_wall, 1)
    cloud_scales = torch.exp(torch.rand(n_cloud, 3, generator=g, dtype=F64) - 4.0)
    n = n_wall + n_cloud
    quats = torch.cat(
        [
            torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64).repeat(n_wall, 1),
            torch.randn(n_cloud, 4, generator=g, dtype=F64),
        ]
    )
    colors = torch.cat(
        [_wall_colors(wall_means), torch.rand(n_cloud, 3, generator=g, dtype=F64) * 0.8 + 0.1]
    )
    sh = torch.zeros(n, 4, 3, dtype=F64)
    sh[:, 0] = rgb_to_sh(colors)
    sh[n_wall:, 1:] = torch.randn(n_cloud, 3, 3, generator=g, dtype=F64) * 0.1
    opacities = torch.cat(
        [
            torch.full((n_wall,), 0.99, dtype=F64),
            torch.rand(n_cloud, generator=g, dtype=F64) * 0.4 + 0.55,
        ]
    )
    return Gaussians(
        means=torch.cat([wall_means, cloud_means]),
        quats=quats,
        scales=torch.cat([wall_scales, cloud_scales]),
        opacities=opacities,
        sh=sh,
    )


def _wall_colors(means: torch.Tensor) -> torch.Tensor:
    """A smooth colour pattern over the wall (neighbours alike, as on real surfaces)."""
    x, y = means[:, 0:1], means[:, 1:2]
    phase = torch.tensor([0.0, 2.1, 4.2], dtype=F64)
    return 0.5 + 0.3 * torch.sin(2.5 * x + phase) * torch.cos(3.0 * y - phase / 2)


def grid_cameras(
    columns: int = 5, rows: int = 3, width: int = 32, height: int = 24
) -> list[Camera]:
    """Cameras on a ``columns × rows`` grid of the plane ``z = -0.75``, looking at the cloud."""
    cameras = []
    for row in range(rows):
        for column in range(columns):
            x = -0.3 + 0.6 * column / max(columns - 1, 1)
            y = -0.175 + 0.35 * row / max(rows - 1, 1)
            eye, target = (x, y, -0.75), (0.0, 0.0, 0.125)
            cameras.append(look_at_camera(eye, target, width, height, FOV_Y_DEG))
    return cameras


def render_targets(gaussians: Gaussians, cameras: list[Camera]) -> list[torch.Tensor]:
    """uint8 ``[H, W, 3]`` images of ``gaussians`` (black background, fully covered anyway)."""
    settings = RenderSettings(sh_degree=1)
    images = []
    for camera in cameras:
        rgb = render_dense(gaussians, camera, settings).rgb
        images.append(torch.round(rgb.clamp(0, 1) * 255).to(torch.uint8))
    return images


def tiny_scene(
    n_cloud: int = 60,
    columns: int = 5,
    rows: int = 3,
    width: int = 32,
    height: int = 24,
    eval_every: int = 4,
    point_noise: float = 0.005,
    point_fraction: float = 1.0,
    seed: int = 0,
) -> SceneData:
    """A scene whose SfM points are some of the true centres, shifted by Gaussian noise.

    Args:
        point_noise: standard deviation of the noise on the points, metres.
        point_fraction: share of the true centres that become SfM points (a seeded subset).
        eval_every: views with ``index % eval_every == eval_every - 1`` are held out.

    Point colours are the true DC colours with up to ±10 levels of noise.
    """
    truth = wall_and_cloud_gaussians(n_cloud, seed)
    cameras = grid_cameras(columns, rows, width, height)
    images = render_targets(truth, cameras)
    views = [
        View(f"frame_{i:05d}.jpg", c, im)
        for i, (c, im) in enumerate(zip(cameras, images, strict=True))
    ]
    g = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(truth.means.shape, generator=g, dtype=F64) * point_noise
    rgb = (truth.sh[:, 0] * C0 + 0.5) * 255 + torch.randint(-10, 11, (len(noise), 3), generator=g)
    count = max(1, round(point_fraction * len(noise)))
    kept = torch.randperm(len(noise), generator=g)[:count].sort().values
    return SceneData(
        train=[v for i, v in enumerate(views) if i % eval_every != eval_every - 1],
        eval=[v for i, v in enumerate(views) if i % eval_every == eval_every - 1],
        points=(truth.means + noise)[kept].float(),
        point_colors=rgb[kept].round().clamp(0, 255).to(torch.uint8),
        frame=estimate_scene_frame(
            torch.stack([c.world_to_camera for c in cameras]).double().numpy(),
            truth.means.double().numpy(),
        ),
    )


def params_with_moments(n: int, seed: int = 0) -> tuple[Params, Optimizers]:
    """Parameters whose Adam moments differ per row (after two steps on random gradients)."""
    params = params_from_splats(random_splats(n, sh_degree=1, seed=seed))
    optimizers = make_optimizers(params, TrainConfig().lr)
    g = torch.Generator().manual_seed(seed + 100)
    for _ in range(2):
        for name in PARAM_NAMES:
            params[name].grad = torch.randn(params[name].shape, generator=g)
            optimizers[name].step()
    return params, optimizers


def moments(optimizers: Optimizers, params: Params, name: ParamName) -> dict[str, torch.Tensor]:
    state = optimizers[name].state[params[name]]
    return {k: v.clone() for k, v in state.items()}
