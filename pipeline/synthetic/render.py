"""Render the synthetic scene's frames, including lens distortion for distorted camera models.

Rendering uses ``get_rasterizer("cpu")``. While that is still the dense oracle (every Gaussian
at every pixel: seconds per frame even at 160×120), frames are rendered with the oracle's own
projection and compositing applied tile by tile to the Gaussians whose screen bounding box
touches the tile. That is the same image: a Gaussian outside its box has alpha below 1/255 at
every pixel, which the compositing rules skip anyway.

A distorted camera's frame is rendered as a larger pinhole image (the "canvas") that covers the
whole distorted field of view, then resampled through the lens model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from pipeline.colmap.distortion import intrinsics, is_distorted, unproject
from pipeline.colmap.model import ColmapCamera
from pipeline.render import DenseRasterizer, get_rasterizer
from pipeline.render.dense import composite_dense, view_colors
from pipeline.render.projection import project
from pipeline.render.types import Camera, Gaussians, RenderSettings
from pipeline.undistort import BilinearSampler, PinholeIntrinsics

__all__ = ["FrameRenderer", "render_pinhole"]

_TILE = 16  # pixels; small tiles keep the oracle's [pixels × Gaussians] tensors small


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
    rasterizer = get_rasterizer("cpu")
    with torch.no_grad():
        if isinstance(rasterizer, DenseRasterizer):
            with _single_thread():
                return _render_tiled_oracle(gaussians, camera, settings)
        out = rasterizer.render(gaussians, camera, settings)
        return out.rgb, out.depth[..., 0], out.alpha[..., 0]


@contextmanager
def _single_thread() -> Iterator[None]:
    """Per-tile tensors are tiny: extra intra-op threads only add overhead (10× on a busy box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _render_tiled_oracle(
    gaussians: Gaussians, camera: Camera, settings: RenderSettings
) -> tuple[Tensor, Tensor, Tensor]:
    proj = project(gaussians, camera, settings.eps2d, settings.near_plane, settings.far_plane)
    colors = view_colors(gaussians, camera, settings.sh_degree)
    order = torch.argsort(proj.depths, stable=True)
    order = order[(proj.radii[order] > 0).all(dim=-1)]
    means2d, radii = proj.means2d[order], proj.radii[order]
    conics, opacities = proj.conics[order], gaussians.opacities[order]
    colors, depths = colors[order], proj.depths[order]
    background = torch.tensor(settings.background, dtype=colors.dtype)
    rgb = torch.empty(camera.height, camera.width, 3, dtype=colors.dtype)
    depth = torch.empty(camera.height, camera.width, dtype=colors.dtype)
    alpha = torch.empty(camera.height, camera.width, dtype=colors.dtype)
    for y0 in range(0, camera.height, _TILE):
        for x0 in range(0, camera.width, _TILE):
            w, h = min(_TILE, camera.width - x0), min(_TILE, camera.height - y0)
            hit = (
                (means2d[:, 0] + radii[:, 0] > x0)
                & (means2d[:, 0] - radii[:, 0] < x0 + w)
                & (means2d[:, 1] + radii[:, 1] > y0)
                & (means2d[:, 1] - radii[:, 1] < y0 + h)
            )
            offset = torch.tensor([x0, y0], dtype=means2d.dtype)
            tile_rgb, tile_alpha, tile_depth = composite_dense(
                means2d[hit] - offset,
                conics[hit],
                opacities[hit],
                colors[hit],
                depths[hit],
                w,
                h,
                background,
            )
            rgb[y0 : y0 + h, x0 : x0 + w] = tile_rgb
            depth[y0 : y0 + h, x0 : x0 + w] = tile_depth[..., 0]
            alpha[y0 : y0 + h, x0 : x0 + w] = tile_alpha[..., 0]
    return rgb, depth, alpha
