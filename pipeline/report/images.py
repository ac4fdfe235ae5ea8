"""Report pictures: ground truth | render | error map strips, and the loss curve (PNG, PIL only).

The error map shows the per-pixel mean absolute error over the colour channels, scaled so that
an error of ``ERROR_FULL_SCALE`` (or more) is the brightest colour, on a black → red → yellow →
white ramp.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

__all__ = ["ERROR_FULL_SCALE", "comparison_strip", "error_map", "loss_curve", "png_bytes"]

ERROR_FULL_SCALE = 0.25  # mean absolute error (colours in [0, 1]) shown as white
_GAP = 4  # pixels between the three panels


def error_map(truth: NDArray[np.uint8], render: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``[H, W, 3]`` uint8 heat map of ``mean_c |truth - render| / 255``."""
    error = np.abs(truth.astype(np.float32) - render.astype(np.float32)).mean(axis=-1) / 255.0
    t = np.clip(error / ERROR_FULL_SCALE, 0.0, 1.0)
    red = np.clip(3.0 * t, 0, 1)
    green = np.clip(3.0 * t - 1.0, 0, 1)
    blue = np.clip(3.0 * t - 2.0, 0, 1)
    return np.asarray((np.stack([red, green, blue], axis=-1) * 255).round().astype(np.uint8))


def comparison_strip(truth: NDArray[np.uint8], render: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``[H, 3W + 2 gap, 3]``: ground truth, render and error map side by side (white gaps)."""
    height, width = truth.shape[:2]
    strip = np.full((height, 3 * width + 2 * _GAP, 3), 255, dtype=np.uint8)
    for k, panel in enumerate((truth, render, error_map(truth, render))):
        left = k * (width + _GAP)
        strip[:, left : left + width] = panel
    return strip


def png_bytes(pixels: NDArray[np.uint8] | Image.Image) -> bytes:
    picture = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def loss_curve(
    history: Sequence[tuple[int, float]], size: tuple[int, int] = (640, 320)
) -> Image.Image:
    """The training loss against the step (log scale when it spans more than a factor of 10),
    with the first and last step and the loss range written on the axes."""
    width, height = size
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    left, right, top, bottom = 60, width - 12, 12, height - 28
    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    points = [(s, v) for s, v in history if math.isfinite(v) and v > 0]
    if len(points) < 2:
        draw.text((left + 10, top + 10), "no loss recorded", fill=(0, 0, 0))
        return picture
    steps = np.array([s for s, _ in points], dtype=np.float64)
    values = np.array([v for _, v in points], dtype=np.float64)
    logarithmic = values.max() / values.min() > 10
    shown = np.log10(values) if logarithmic else values
    low, high = float(shown.min()), float(shown.max())
    span_y = high - low or 1.0
    span_x = float(steps.max() - steps.min()) or 1.0
    xs = left + (steps - steps.min()) / span_x * (right - left)
    ys = bottom - (shown - low) / span_y * (bottom - top)
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(31, 119, 180), width=2)
    draw.text((left, bottom + 6), f"step {int(steps.min())}", fill=(0, 0, 0))
    draw.text((right - 80, bottom + 6), f"step {int(steps.max())}", fill=(0, 0, 0))
    draw.text((4, top), f"{values.max():.3g}", fill=(0, 0, 0))
    draw.text((4, bottom - 10), f"{values.min():.3g}", fill=(0, 0, 0))
    draw.text((left + 8, top + 4), "loss" + (" (log)" if logarithmic else ""), fill=(0, 0, 0))
    return picture
