"""Comparing images: decoding screenshots and JPEGs, PSNR."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["png_rgb", "psnr"]


def png_rgb(data: bytes) -> NDArray[np.uint8]:
    """PNG / JPEG bytes → ``[H, W, 3]`` uint8."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB of two same-sized 8-bit images."""
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * float(np.log10(255.0**2 / max(mse, 1e-12)))
