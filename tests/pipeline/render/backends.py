"""Backends under test: the CPU tile rasterizer always, gsplat where CUDA is present."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from pipeline.render import GsplatRasterizer, TileRasterizer
from pipeline.render.types import Gaussians, Rasterizer


@dataclass(frozen=True)
class BackendCase:
    """How to run one backend against the float64 oracle.

    Attributes:
        name: backend name.
        dtype: the dtype the backend renders in.
        device: where its tensors live.
        atol: absolute tolerance on images (colours and alpha in [0, 1], depth in world units).
        grad_rtol: tolerance on gradients, relative to the largest entry of each gradient.
    """

    name: str
    dtype: torch.dtype
    device: str
    atol: float
    grad_rtol: float

    def rasterizer(self) -> Rasterizer:
        if self.name == "gsplat":
            return GsplatRasterizer()
        return TileRasterizer()

    def gaussians(self, gaussians: Gaussians) -> Gaussians:
        """A leaf copy of ``gaussians`` in this backend's dtype and device."""
        return leaf_copy(gaussians, self.dtype, self.device)


def leaf_copy(gaussians: Gaussians, dtype: torch.dtype, device: str = "cpu") -> Gaussians:
    """Fresh leaf tensors (``requires_grad``) holding the values of ``gaussians``."""
    moved = gaussians.detach().to(device, dtype)
    return Gaussians(*(t.clone().requires_grad_(True) for t in moved._tensors()))


CPU = BackendCase("cpu", torch.float64, "cpu", atol=1e-10, grad_rtol=1e-8)
GSPLAT = BackendCase("gsplat", torch.float32, "cuda", atol=2e-4, grad_rtol=2e-2)

BACKENDS = [
    pytest.param(CPU, id="cpu"),
    pytest.param(
        GSPLAT,
        id="gsplat",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ],
    ),
]
