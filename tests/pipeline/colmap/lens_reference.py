"""Scalar float64 lens models written straight from COLMAP's formulas (test oracle).

Independent of ``pipeline.colmap.distortion``: one function per model, no vectorisation, the
fisheye models in the ``theta_d / r`` form rather than the scale-then-distort form.
"""

from __future__ import annotations

import math


def reference_pixel(
    model: str, params: tuple[float, ...], x: float, y: float
) -> tuple[float, float]:
    """Pixel ``(u, v)`` of the normalised ideal point ``(x, y)`` for a COLMAP camera."""
    if model in (
        "SIMPLE_PINHOLE",
        "SIMPLE_RADIAL",
        "RADIAL",
        "SIMPLE_RADIAL_FISHEYE",
        "RADIAL_FISHEYE",
        "SIMPLE_FISHEYE",
    ):
        f, cx, cy, *k = params
        fx = fy = f
    else:
        fx, fy, cx, cy, *k = params
    xd, yd = _distorted(model, k, x, y)
    return fx * xd + cx, fy * yd + cy


def _distorted(model: str, k: list[float], x: float, y: float) -> tuple[float, float]:
    r2 = x * x + y * y
    if model in ("SIMPLE_PINHOLE", "PINHOLE"):
        return x, y
    if model == "SIMPLE_RADIAL":
        return x * (1 + k[0] * r2), y * (1 + k[0] * r2)
    if model == "RADIAL":
        radial = 1 + k[0] * r2 + k[1] * r2 * r2
        return x * radial, y * radial
    if model in ("OPENCV", "FULL_OPENCV"):
        k1, k2, p1, p2 = k[:4]
        k3, k4, k5, k6 = k[4:] if model == "FULL_OPENCV" else (0.0, 0.0, 0.0, 0.0)
        radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
        return (
            x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + 2 * p2 * x * y + p1 * (r2 + 2 * y * y),
        )
    coefficients = [*k, 0.0, 0.0, 0.0, 0.0][:4]  # fisheye family
    r = math.sqrt(r2)
    if r < 1e-15:
        return x, y
    theta = math.atan(r)
    theta_d = theta * (1 + sum(c * theta ** (2 * (i + 1)) for i, c in enumerate(coefficients)))
    return x * theta_d / r, y * theta_d / r
