"""SSIM, the training loss and PSNR against slow float64 references."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.train.loss import gaussian_window, psnr, ssim, training_loss


def ssim_brute_force(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over every valid window position, each window computed on its own (float64).

    An axis shorter than 11 pixels gets a one-tap window (no smoothing along it).
    """
    a, b = a.double(), b.double()
    height, width, channels = a.shape
    g = gaussian_window(dtype=torch.float64)
    wy = g if height >= 11 else torch.ones(1, dtype=torch.float64)
    wx = g if width >= 11 else torch.ones(1, dtype=torch.float64)
    weights = torch.outer(wy, wx)
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(height - len(wy) + 1):
        for j in range(width - len(wx) + 1):
            for c in range(channels):
                x = a[i : i + len(wy), j : j + len(wx), c]
                y = b[i : i + len(wy), j : j + len(wx), c]
                mx, my = (weights * x).sum(), (weights * y).sum()
                vx = (weights * x * x).sum() - mx**2
                vy = (weights * y * y).sum() - my**2
                cxy = (weights * x * y).sum() - mx * my
                lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
                values.append(float(lum * (2 * cxy + c2) / (vx + vy + c2)))
    return sum(values) / len(values)


def noisy_pair(height: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image and a blurred, noisy copy of it, both in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(height, width, 3, generator=g)
    b = (0.7 * a + 0.3 * torch.rand(height, width, 3, generator=g)).clamp(0, 1)
    return a, b


def test_gaussian_window_matches_the_formula() -> None:
    w = gaussian_window(dtype=torch.float64)
    expected = torch.tensor([math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)])
    assert torch.allclose(w, (expected / expected.sum()).double(), atol=1e-15)


@pytest.mark.parametrize(("height", "width", "seed"), [(16, 19, 0), (23, 12, 1), (13, 13, 2)])
def test_ssim_matches_per_window_brute_force(height: int, width: int, seed: int) -> None:
    a, b = noisy_pair(height, width, seed)
    assert float(ssim(a.double(), b.double())) == pytest.approx(ssim_brute_force(a, b), abs=1e-9)
    assert float(ssim(a, b)) == pytest.approx(ssim_brute_force(a, b), abs=1e-5)


@pytest.mark.parametrize(("height", "width"), [(6, 20), (18, 8), (5, 7)])
def test_ssim_skips_smoothing_along_axes_shorter_than_the_window(height: int, width: int) -> None:
    a, b = noisy_pair(height, width, seed=3)
    assert float(ssim(a.double(), b.double())) == pytest.approx(ssim_brute_force(a, b), abs=1e-9)


def test_ssim_of_an_image_with_itself_is_one_and_lower_otherwise() -> None:
    a, b = noisy_pair(20, 20, seed=4)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(a, b)) < 0.9


def test_ssim_rejects_mismatched_images() -> None:
    with pytest.raises(ValueError, match=r"two \[H, W, C\] images of one shape"):
        ssim(torch.zeros(12, 12, 3), torch.zeros(12, 13, 3))


def test_training_loss_weights_l1_and_ssim() -> None:
    a, b = noisy_pair(15, 17, seed=5)
    l1 = float((a.double() - b.double()).abs().mean())
    expected = 0.8 * l1 + 0.2 * (1.0 - ssim_brute_force(a, b))
    assert float(training_loss(a.double(), b.double(), 0.2)) == pytest.approx(expected, abs=1e-9)
    assert float(training_loss(a, b, 0.0)) == pytest.approx(l1, abs=1e-6)


def test_training_loss_is_differentiable_through_ssim() -> None:
    a, b = noisy_pair(14, 14, seed=6)
    x = a.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: training_loss(t, b.double(), 0.2), (x,))


def test_psnr_matches_its_definition() -> None:
    a, b = noisy_pair(9, 10, seed=7)
    mse = float(((a.double() - b.double()) ** 2).mean())
    assert psnr(a, b) == pytest.approx(-10 * math.log10(mse), abs=1e-9)
    assert psnr(a, a) == pytest.approx(100.0)
