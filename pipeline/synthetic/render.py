"""Render the synthetic scene's frames, including lens distortion for distorted camera models.

Rendering uses the project's CPU rasterizer (``get_rasterizer("cpu")``), so the frames are
exactly what the trainer's own renderer would produce from the ground-truth Gaussians.

A distorted camera's frame is rendered as a larger pinhole image (the "canvas") that covers the
whole distorted field of view, then resampled through the lens model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from pipeline.colmap.distortion import intrinsics, is_distorted, unproject
from pipeline.colmap.model import ColmapCamera
from pipeline.render import get_rasterizer
from pipeline.render.types import Camera, Gaussians, RenderSettings
from pipeline.undistort import BilinearSampler, PinholeIntrinsics

__all__ = ["FrameRenderer", "render_pinhole"]


class FrameRenderer:
    """Renders frames of one COLMAP camera from world → camera poses."""

    def __init__(self, gaussians: Gaussians, camera: ColmapCamera, settings: RenderSettings):
        self.gaussians, self.camera, self.settings = gaussians, camera, settings
        self.canvas = _canvas_intrinsics(camera)
        self.sampler: BilinearSampler | None = None
        if is_distorted(camera):
            u, v = _canvas_lookup(camera, self.canvas)
            self.sampler = BilinearSampler(u, v, self.canvas.width, self.canvas.height)

    def render(self, world_to_camera: Tensor) -> NDArray[np.uint8]:
        """The ``[H, W, 3]`` uint8 frame seen from ``world_to_camera`` (``[4, 4]``, OpenCV)."""
        canvas = Camera(
            world_to_camera.to(torch.float32),
            torch.from_numpy(self.canvas.matrix().astype(np.float32)),
            self.canvas.width,
            self.canvas.height,
        )
        rgb, _, _ = render_pinhole(self.gaussians, canvas, self.settings)
        image: NDArray[np.uint8] = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return image if self.sampler is None else self.sampler(image)


def _canvas_intrinsics(camera: ColmapCamera, margin: int = 2) -> PinholeIntrinsics:
    """Pinhole intrinsics (same focal lengths) whose image covers the camera's whole view."""
    fx, fy, cx, cy = intrinsics(camera)
    if not is_distorted(camera):
        return PinholeIntrinsics(fx, fy, cx, cy, camera.width, camera.height)
    w, h = camera.width, camera.height
    edge_u = np.concatenate(
        [np.linspace(0, w, 256), np.full(256, w), np.linspace(0, w, 256), np.zeros(256)]
    )
    edge_v = np.concatenate(
        [np.zeros(256), np.linspace(0, h, 256), np.full(256, h), np.linspace(0, h, 256)]
    )
    x, y = unproject(camera, edge_u, edge_v)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"the {camera.model} parameters {camera.params} do not invert")
    left, right = math.floor(x.min() * fx) - margin, math.ceil(x.max() * fx) + margin
    top, bottom = math.floor(y.min() * fy) - margin, math.ceil(y.max() * fy) + margin
    return PinholeIntrinsics(fx, fy, -float(left), -float(top), right - left, bottom - top)


def _canvas_lookup(
    camera: ColmapCamera, canvas: PinholeIntrinsics
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """For each pixel of the distorted frame, where it lies in the canvas (pixel coordinates)."""
    u, v = np.meshgrid(np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5)
    x, y = unproject(camera, u, v)
    return (
        (x * canvas.fx + canvas.cx).astype(np.float32),
        (y * canvas.fy + canvas.cy).astype(np.float32),
    )


def render_pinhole(
    gaussians: Gaussians, camera: Camera, settings: RenderSettings
) -> tuple[Tensor, Tensor, Tensor]:
    """``(rgb [H, W, 3], depth [H, W], alpha [H, W])`` of one pinhole view, without gradients."""
    with torch.no_grad():
        out = get_rasterizer("cpu").render(gaussians, camera, settings)
    return out.rgb, out.depth[..., 0], out.alpha[..., 0]
