"""Lens models of COLMAP cameras: ideal pinhole coordinates ↔ pixels of the distorted image.

"Normalised" coordinates are ``(x, y) = (X / Z, Y / Z)`` for a point ``(X, Y, Z)`` in the
OpenCV camera frame. :func:`project` applies the camera's distortion and intrinsics exactly as
COLMAP defines them; :func:`unproject` inverts it numerically (Newton's method, float64).

Models this module can handle are in :data:`UNDISTORTABLE_MODELS`; the pinhole ones pass
through unchanged. Anything else raises :class:`~pipeline.errors.UnsupportedCameraError`.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from pipeline.colmap.camera_models import model_by_name
from pipeline.colmap.model import ColmapCamera
from pipeline.errors import UnsupportedCameraError

__all__ = [
    "PINHOLE_MODELS",
    "UNDISTORTABLE_MODELS",
    "check_supported",
    "distort",
    "intrinsics",
    "is_distorted",
    "project",
    "unproject",
]

F64 = NDArray[np.float64]

PINHOLE_MODELS: Final = frozenset({"SIMPLE_PINHOLE", "PINHOLE"})
_PERSPECTIVE: Final = frozenset({"SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"})
_FISHEYE: Final = frozenset(
    {"OPENCV_FISHEYE", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE", "SIMPLE_FISHEYE", "FISHEYE"}
)
UNDISTORTABLE_MODELS: Final = PINHOLE_MODELS | _PERSPECTIVE | _FISHEYE


def check_supported(camera: ColmapCamera) -> None:
    """Raise :class:`UnsupportedCameraError` unless the camera's model can be undistorted."""
    if camera.model not in UNDISTORTABLE_MODELS:
        supported = ", ".join(sorted(UNDISTORTABLE_MODELS))
        raise UnsupportedCameraError(
            f"camera {camera.camera_id} uses the {camera.model} model, which this pipeline "
            f"cannot undistort (supported: {supported})"
        )


def intrinsics(camera: ColmapCamera) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` in pixels."""
    return camera.param("fx"), camera.param("fy"), camera.param("cx"), camera.param("cy")


def _coefficients(camera: ColmapCamera) -> dict[str, float]:
    """Distortion coefficients by name; ``k1`` also answers single-``k`` models."""
    names = model_by_name(camera.model).params
    values = dict(zip(names, camera.params, strict=True))
    if "k" in values:
        values["k1"] = values.pop("k")
    for name in ("f", "fx", "fy", "cx", "cy"):
        values.pop(name, None)
    return values


def is_distorted(camera: ColmapCamera) -> bool:
    """Whether the camera's images need resampling to become pinhole images."""
    check_supported(camera)
    return camera.model in _FISHEYE or any(v != 0.0 for v in _coefficients(camera).values())


def distort(camera: ColmapCamera, x: F64, y: F64) -> tuple[F64, F64]:
    """Normalised ideal coordinates → normalised distorted coordinates (before intrinsics)."""
    check_supported(camera)
    c = _coefficients(camera)
    if camera.model in PINHOLE_MODELS:
        return x, y
    if camera.model in _FISHEYE:
        return _distort_fisheye(c, x, y)
    return _distort_perspective(c, x, y)


def _distort_perspective(c: dict[str, float], x: F64, y: F64) -> tuple[F64, F64]:
    k1, k2, k3 = c.get("k1", 0.0), c.get("k2", 0.0), c.get("k3", 0.0)
    k4, k5, k6 = c.get("k4", 0.0), c.get("k5", 0.0), c.get("k6", 0.0)
    p1, p2 = c.get("p1", 0.0), c.get("p2", 0.0)
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + 2 * p2 * x * y + p1 * (r2 + 2 * y * y)
    return xd, yd


def _distort_fisheye(c: dict[str, float], x: F64, y: F64) -> tuple[F64, F64]:
    k1, k2, k3, k4 = (c.get(f"k{i}", 0.0) for i in range(1, 5))
    r = np.hypot(x, y)
    theta = np.arctan(r)
    # Equidistant projection: radius theta instead of tan(theta); the limit at r = 0 is 1.
    scale = np.where(r > 1e-12, theta / np.maximum(r, 1e-300), 1.0)
    t2 = theta * theta
    radial = 1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
    return x * scale * radial, y * scale * radial


def project(camera: ColmapCamera, x: F64, y: F64) -> tuple[F64, F64]:
    """Normalised ideal coordinates → pixel coordinates ``(u, v)`` in the distorted image."""
    fx, fy, cx, cy = intrinsics(camera)
    xd, yd = distort(camera, np.asarray(x, np.float64), np.asarray(y, np.float64))
    return fx * xd + cx, fy * yd + cy


def unproject(
    camera: ColmapCamera, u: F64, v: F64, iterations: int = 100, tolerance: float = 1e-13
) -> tuple[F64, F64]:
    """Pixel coordinates of the distorted image → normalised ideal coordinates.

    Newton's method on :func:`distort` with a central-difference Jacobian; entries that do not
    converge (outside the lens model's valid range) come back as NaN.
    """
    fx, fy, cx, cy = intrinsics(camera)
    target_x = (np.asarray(u, np.float64) - cx) / fx
    target_y = (np.asarray(v, np.float64) - cy) / fy
    x, y = _initial_guess(camera, target_x, target_y)
    converged = np.zeros(x.shape, dtype=bool)
    for _ in range(iterations):
        step_x, step_y = _newton_step(camera, x, y, target_x, target_y)
        x, y = x - step_x, y - step_y
        converged = np.hypot(step_x, step_y) < tolerance * (1 + np.hypot(x, y))
        if converged.all():
            break
    valid = converged & _before_fold(camera, x, y)
    return np.where(valid, x, np.nan), np.where(valid, y, np.nan)


def _before_fold(camera: ColmapCamera, x: F64, y: F64, steps: int = 32) -> NDArray[np.bool_]:
    """Whether the distorted radius grows all along the ray from the centre to ``(x, y)``.

    Strong radial coefficients fold the image back onto itself beyond some radius; a point
    there also solves ``distort(p) = target`` but is not what the lens saw.
    """
    fractions = np.linspace(0.0, 1.0, steps + 1).reshape((-1,) + (1,) * np.ndim(x))
    with np.errstate(invalid="ignore"):
        xd, yd = distort(camera, fractions * np.nan_to_num(x), fractions * np.nan_to_num(y))
    return np.asarray((np.diff(np.hypot(xd, yd), axis=0) > 0).all(axis=0) | (np.hypot(x, y) == 0))


def _initial_guess(camera: ColmapCamera, xd: F64, yd: F64) -> tuple[F64, F64]:
    if camera.model not in _FISHEYE:
        return xd.copy(), yd.copy()
    # Invert the undistorted equidistant projection: radius theta → tan(theta).
    theta = np.minimum(np.hypot(xd, yd), 1.4)
    scale = np.where(theta > 1e-12, np.tan(theta) / np.maximum(theta, 1e-300), 1.0)
    return xd * scale, yd * scale


def _newton_step(
    camera: ColmapCamera, x: F64, y: F64, target_x: F64, target_y: F64
) -> tuple[F64, F64]:
    h = 1e-7 * (1 + np.hypot(x, y))
    fx0, fy0 = distort(camera, x, y)
    (xp, yp), (xm, ym) = distort(camera, x + h, y), distort(camera, x - h, y)
    j11, j21 = (xp - xm) / (2 * h), (yp - ym) / (2 * h)  # d/dx
    (xp, yp), (xm, ym) = distort(camera, x, y + h), distort(camera, x, y - h)
    j12, j22 = (xp - xm) / (2 * h), (yp - ym) / (2 * h)  # d/dy
    rx, ry = fx0 - target_x, fy0 - target_y
    det = j11 * j22 - j12 * j21
    with np.errstate(divide="ignore", invalid="ignore"):
        return (j22 * rx - j12 * ry) / det, (j11 * ry - j21 * rx) / det
