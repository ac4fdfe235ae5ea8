"""Resample images of distorted COLMAP cameras into pinhole images.

The output keeps the input's size. Its pinhole intrinsics are chosen so that the image shows
the largest axis-aligned rectangle of the scene that lies inside the distorted image: every
output pixel samples a real input pixel, so no black borders appear (the same idea as OpenCV's
``getOptimalNewCameraMatrix(alpha=0)``). Pixel centres are at ``+0.5`` in both images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.colmap.distortion import intrinsics, is_distorted, project, unproject
from pipeline.colmap.model import ColmapCamera
from pipeline.errors import UnsupportedCameraError

__all__ = [
    "BilinearSampler",
    "PinholeIntrinsics",
    "UndistortionPlan",
    "plan_undistortion",
    "remap_bilinear",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class PinholeIntrinsics:
    """A pinhole camera's intrinsics (pixels) and image size."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def matrix(self) -> F64:
        """``[3, 3]`` float64 ``K``."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def scaled_to(self, width: int, height: int) -> PinholeIntrinsics:
        """The same camera for the image resized to ``width × height`` (pixel edges scale)."""
        sx, sy = width / self.width, height / self.height
        return PinholeIntrinsics(
            self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )


@dataclass(frozen=True)
class UndistortionPlan:
    """How to turn one camera's images into pinhole images.

    Attributes:
        pinhole: intrinsics of the output images.
        source_u: ``[H, W]`` float32 column coordinate (pixels, centre +0.5) in the input image
            that each output pixel samples; ``None`` when the camera has no distortion.
        source_v: ``[H, W]`` float32 row coordinate, likewise.
        sampler: the prepared resampling (``None`` when there is nothing to resample).
    """

    pinhole: PinholeIntrinsics
    source_u: NDArray[np.float32] | None = None
    source_v: NDArray[np.float32] | None = None
    sampler: BilinearSampler | None = None

    def apply(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``[H, W, C]`` uint8 input image → ``[H, W, C]`` uint8 pinhole image."""
        return image if self.sampler is None else self.sampler(image)


def plan_undistortion(camera: ColmapCamera, border_samples: int = 512) -> UndistortionPlan:
    """The plan for ``camera``: identity for pinhole cameras, else new intrinsics plus a map.

    Raises:
        UnsupportedCameraError: the model cannot be undistorted, or its lens model does not
            invert over the image (e.g. parameters that fold the image onto itself).
    """
    if not is_distorted(camera):
        fx, fy, cx, cy = intrinsics(camera)
        return UndistortionPlan(PinholeIntrinsics(fx, fy, cx, cy, camera.width, camera.height))
    pinhole = _inner_pinhole(camera, border_samples)
    cols = (np.arange(camera.width) + 0.5 - pinhole.cx) / pinhole.fx
    rows = (np.arange(camera.height) + 0.5 - pinhole.cy) / pinhole.fy
    x, y = np.meshgrid(cols, rows)
    u, v = (a.astype(np.float32) for a in project(camera, x, y))
    sampler = BilinearSampler(u, v, camera.width, camera.height)
    return UndistortionPlan(pinhole, u, v, sampler)


def _inner_pinhole(camera: ColmapCamera, samples: int) -> PinholeIntrinsics:
    """Pinhole intrinsics whose pixel centres span the largest rectangle inside the image."""
    w, h = camera.width, camera.height
    along_u = np.linspace(0.5, w - 0.5, samples)
    along_v = np.linspace(0.5, h - 0.5, samples)
    left = unproject(camera, np.full(samples, 0.5), along_v)[0]
    right = unproject(camera, np.full(samples, w - 0.5), along_v)[0]
    top = unproject(camera, along_u, np.full(samples, 0.5))[1]
    bottom = unproject(camera, along_u, np.full(samples, h - 0.5))[1]
    x0, x1, y0, y1 = np.max(left), np.min(right), np.max(top), np.min(bottom)
    if not (np.isfinite([x0, x1, y0, y1]).all() and x1 > x0 and y1 > y0):
        raise UnsupportedCameraError(
            f"camera {camera.camera_id} ({camera.model}, params {camera.params}) cannot be "
            "undistorted: its lens model does not invert over the image"
        )
    # First and last pixel centres of the output land on the rectangle's edges.
    fx, fy = (w - 1) / (x1 - x0), (h - 1) / (y1 - y0)
    return PinholeIntrinsics(fx, fy, 0.5 - x0 * fx, 0.5 - y0 * fy, w, h)


class BilinearSampler:
    """Bilinear resampling at fixed pixel coordinates, prepared once and applied per image.

    Args:
        source_u: ``[h, w]`` column coordinates to sample (pixels, centres at +0.5).
        source_v: ``[h, w]`` row coordinates.
        width: width of the images that will be sampled.
        height: their height.

    Coordinates outside the image are clamped to its edge pixels.
    """

    def __init__(
        self,
        source_u: NDArray[np.float32],
        source_v: NDArray[np.float32],
        width: int,
        height: int,
    ) -> None:
        col = np.clip(source_u.astype(np.float64) - 0.5, 0, width - 1)
        row = np.clip(source_v.astype(np.float64) - 0.5, 0, height - 1)
        # Left/top neighbour, kept one short of the edge so the right/bottom one exists.
        c0 = np.minimum(col.astype(np.int64), max(width - 2, 0))
        r0 = np.minimum(row.astype(np.int64), max(height - 2, 0))
        fc, fr = (col - c0).reshape(-1, 1), (row - r0).reshape(-1, 1)
        step_c, step_r = int(width > 1), width * int(height > 1)
        self.shape = source_u.shape
        self.size = (width, height)
        first = (r0 * width + c0).reshape(-1)
        offsets = (0, step_c, step_r, step_r + step_c)
        self.indices = tuple((first + offset).astype(np.intp) for offset in offsets)
        weights = ((1 - fc) * (1 - fr), fc * (1 - fr), (1 - fc) * fr, fc * fr)
        self.weights = tuple(w.astype(np.float32) for w in weights)

    def __call__(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``[H, W, C]`` uint8 → ``[h, w, C]`` uint8 (rounded to nearest)."""
        height, width, channels = image.shape
        if (width, height) != self.size:
            raise ValueError(f"sampler prepared for {self.size}, got a {width}x{height} image")
        flat = image.reshape(-1, channels)
        out = np.zeros((self.indices[0].size, channels), dtype=np.float32)
        for index, weight in zip(self.indices, self.weights, strict=True):
            out += np.take(flat, index, axis=0) * weight  # take: much faster than fancy indexing
        np.rint(out, out=out)
        result: NDArray[np.uint8] = np.clip(out, 0, 255, out=out).astype(np.uint8)
        return result.reshape(*self.shape, channels)


def remap_bilinear(
    image: NDArray[np.uint8], source_u: NDArray[np.float32], source_v: NDArray[np.float32]
) -> NDArray[np.uint8]:
    """Sample ``image`` ``[H, W, C]`` bilinearly at pixel coordinates (centres at +0.5).

    Coordinates outside the image are clamped to its edge pixels. Returns ``[h, w, C]`` uint8
    for maps of shape ``[h, w]`` (rounded to nearest).
    """
    height, width = image.shape[:2]
    return BilinearSampler(source_u, source_v, width, height)(image)
