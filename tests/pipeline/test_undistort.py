"""Undistortion into pinhole images, against a brute-force float64 per-pixel resampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.colmap import ColmapCamera
from pipeline.errors import UnsupportedCameraError
from pipeline.undistort import plan_undistortion, remap_bilinear
from tests.pipeline.colmap.lens_reference import reference_pixel

WIDTH, HEIGHT = 41, 31
DISTORTED = {
    "SIMPLE_RADIAL": (30.0, 20.7, 15.2, -0.12),
    "RADIAL": (30.0, 20.7, 15.2, -0.1, 0.03),
    "OPENCV": (30.0, 31.0, 20.7, 15.2, -0.1, 0.02, 0.004, -0.003),
    "FULL_OPENCV": (30.0, 31.0, 20.7, 15.2, -0.1, 0.02, 0.004, -0.003, 0.01, 0.05, -0.01, 0.0),
    "OPENCV_FISHEYE": (30.0, 31.0, 20.7, 15.2, 0.05, -0.02, 0.004, -0.001),
    "SIMPLE_RADIAL_FISHEYE": (30.0, 20.7, 15.2, 0.08),
    "RADIAL_FISHEYE": (30.0, 20.7, 15.2, 0.05, -0.02),
    "SIMPLE_FISHEYE": (30.0, 20.7, 15.2),
    "FISHEYE": (30.0, 31.0, 20.7, 15.2),
}


def camera(model: str) -> ColmapCamera:
    return ColmapCamera(1, model, WIDTH, HEIGHT, DISTORTED[model])  # type: ignore[arg-type]


def brute_force_undistort(cam: ColmapCamera, K: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Per output pixel: back-project through K, distort with the scalar oracle, sample."""
    out = np.zeros(image.shape, dtype=np.float64)
    for i in range(HEIGHT):
        for j in range(WIDTH):
            x = (j + 0.5 - K[0, 2]) / K[0, 0]
            y = (i + 0.5 - K[1, 2]) / K[1, 1]
            u, v = reference_pixel(cam.model, cam.params, x, y)
            out[i, j] = bilinear(image, u - 0.5, v - 0.5)
    return out


def bilinear(image: np.ndarray, col: float, row: float) -> np.ndarray:
    col = min(max(col, 0.0), WIDTH - 1.0)
    row = min(max(row, 0.0), HEIGHT - 1.0)
    c0, r0 = min(math.floor(col), WIDTH - 2), min(math.floor(row), HEIGHT - 2)
    fc, fr = col - c0, row - r0
    pixel = image.astype(np.float64)
    top = pixel[r0, c0] * (1 - fc) + pixel[r0, c0 + 1] * fc
    bottom = pixel[r0 + 1, c0] * (1 - fc) + pixel[r0 + 1, c0 + 1] * fc
    return np.asarray(top * (1 - fr) + bottom * fr)


@pytest.mark.parametrize("model", sorted(DISTORTED))
def test_undistortion_matches_brute_force_resampling(model: str) -> None:
    rng = np.random.default_rng(sorted(DISTORTED).index(model))
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    plan = plan_undistortion(camera(model))
    expected = brute_force_undistort(camera(model), plan.pinhole.matrix(), image)
    result = plan.apply(image)
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.abs(result.astype(np.float64) - expected).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("model", sorted(DISTORTED))
def test_new_pinhole_sees_only_real_pixels_and_wastes_little(model: str) -> None:
    plan = plan_undistortion(camera(model))
    assert plan.source_u is not None and plan.source_v is not None
    u, v = plan.source_u, plan.source_v
    # Every output pixel samples inside the span of input pixel centres: no black borders.
    tol = 1e-3
    assert u.min() >= 0.5 - tol and u.max() <= WIDTH - 0.5 + tol
    assert v.min() >= 0.5 - tol and v.max() <= HEIGHT - 0.5 + tol
    # ... and each output edge reaches the input edge somewhere (the rectangle is the largest).
    assert u[:, 0].min() < 0.5 + 0.05 and u[:, -1].max() > WIDTH - 0.5 - 0.05
    assert v[0, :].min() < 0.5 + 0.05 and v[-1, :].max() > HEIGHT - 0.5 - 0.05
    assert (plan.pinhole.width, plan.pinhole.height) == (WIDTH, HEIGHT)


def test_pinhole_and_zero_coefficient_cameras_pass_through() -> None:
    image = np.arange(HEIGHT * WIDTH * 3, dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
    for cam in (
        ColmapCamera(1, "PINHOLE", WIDTH, HEIGHT, (30.0, 31.0, 20.7, 15.2)),
        ColmapCamera(1, "SIMPLE_RADIAL", WIDTH, HEIGHT, (30.0, 20.7, 15.2, 0.0)),
    ):
        plan = plan_undistortion(cam)
        assert plan.source_u is None and plan.apply(image) is image
        assert plan.pinhole.fx == 30.0 and plan.pinhole.cx == 20.7


def test_a_lens_that_folds_over_is_rejected() -> None:
    folding = ColmapCamera(4, "SIMPLE_RADIAL", WIDTH, HEIGHT, (20.0, 20.5, 15.5, -3.0))
    with pytest.raises(UnsupportedCameraError, match=r"camera 4 .*does not invert over the image"):
        plan_undistortion(folding)


def test_remap_bilinear_interpolates_and_clamps() -> None:
    image = np.array([[[0], [100]], [[200], [50]]], dtype=np.uint8)  # 2x2, one channel
    u = np.array([[1.0, 0.5, -5.0]], dtype=np.float32)  # between columns, centre, far left
    v = np.array([[1.0, 1.5, 0.5]], dtype=np.float32)
    out = remap_bilinear(image, u, v)
    assert out[0, :, 0].tolist() == [88, 200, 0]  # (0+100+200+50)/4 = 87.5 -> 88
