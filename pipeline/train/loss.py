"""Photometric loss and image metrics: L1, SSIM, PSNR.

SSIM follows pytorch-msssim (what splatfacto uses): an 11-pixel Gaussian window with σ = 1.5,
applied separably without padding (only windows fully inside the image count), constants
``C1 = (0.01 L)²`` and ``C2 = (0.03 L)²`` for the data range ``L = 1``, and the map averaged
over pixels and channels. Along an image axis shorter than the window no smoothing is applied
on that axis (pytorch-msssim's rule, which matters for the ¼-resolution start of tiny scenes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_window", "psnr", "ssim", "training_loss"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window(
    size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Normalised 1D Gaussian ``[size]`` centred on the middle tap."""
    coords = torch.arange(size, dtype=dtype) - size // 2
    weights = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def _smooth(images: Tensor, window: Tensor) -> Tensor:
    """Valid separable filtering of ``[B, C, H, W]`` along H then W (axes too short skipped)."""
    channels = images.shape[1]
    out = images
    for axis in (2, 3):
        if out.shape[axis] < window.shape[0]:
            continue
        shape = [1, 1, 1, 1]
        shape[axis] = window.shape[0]
        kernel = window.reshape(shape).expand(channels, 1, *shape[2:])
        out = F.conv2d(out, kernel, groups=channels)
    return out


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean structural similarity of two ``[H, W, C]`` images (scalar, differentiable)."""
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"ssim needs two [H, W, C] images of one shape, got {a.shape}, {b.shape}")
    x = a.permute(2, 0, 1).unsqueeze(0)
    y = b.permute(2, 0, 1).unsqueeze(0)
    window = gaussian_window(dtype=a.dtype).to(a.device)
    # One filtering pass over all five moment images (x, y, x², y², xy) at once.
    mu_x, mu_y, xx, yy, xy = _smooth(torch.cat([x, y, x * x, y * y, x * y], dim=1), window).chunk(
        5, 1
    )
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    var_x, var_y, cov_xy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    contrast_structure = (2.0 * cov_xy + c2) / (var_x + var_y + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * contrast_structure).mean()


def training_loss(rendered: Tensor, target: Tensor, ssim_lambda: float) -> Tensor:
    """``(1 - λ) · L1 + λ · (1 - SSIM)`` of two ``[H, W, 3]`` images in [0, 1]."""
    l1 = (rendered - target).abs().mean()
    if ssim_lambda == 0.0:
        return l1
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * (1.0 - ssim(rendered, target))


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (capped at 100 dB for identical images)."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return 10.0 * math.log10(data_range**2 / max(mse, 1e-10))
