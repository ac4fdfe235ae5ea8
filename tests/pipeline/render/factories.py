"""Small random scenes for renderer tests."""

from __future__ import annotations

import math

import torch

from pipeline.render.types import Camera, Gaussians


def random_gaussians(
    n: int, sh_degree: int = 3, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Gaussians:
    """``n`` Gaussians scattered in a unit-ish box around the origin, random SH colours."""
    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2
    return Gaussians(
        means=(torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 2.0,
        quats=torch.randn(n, 4, generator=g, dtype=dtype),
        scales=torch.exp(torch.rand(n, 3, generator=g, dtype=dtype) * 2.0 - 3.5),
        opacities=torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05,
        sh=torch.randn(n, k, 3, generator=g, dtype=dtype) * 0.4,
    )


def look_at_camera(
    eye: tuple[float, float, float],
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    width: int = 64,
    height: int = 48,
    fov_y_deg: float = 50.0,
    dtype: torch.dtype = torch.float64,
) -> Camera:
    """An OpenCV pinhole camera at ``eye`` looking at ``target`` with world -y as image up."""
    eye_t = torch.tensor(eye, dtype=dtype)
    forward = torch.tensor(target, dtype=dtype) - eye_t
    forward = forward / forward.norm()
    down_hint = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    if abs(float(forward @ down_hint)) > 0.99:
        down_hint = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    right = torch.linalg.cross(down_hint, forward)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    w2c = torch.eye(4, dtype=dtype)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ eye_t
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)
    return Camera(w2c, K, width, height)
