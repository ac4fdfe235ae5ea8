"""Rasterizer backends behind one interface (:class:`~pipeline.render.types.Rasterizer`).

- ``cpu``: this project's differentiable tile rasterizer; runs everywhere.
- ``gsplat``: gsplat's CUDA ``rasterization``; the production path on a GPU.
- ``auto``: ``gsplat`` when CUDA and gsplat's extension are usable, else ``cpu``.
"""

from __future__ import annotations

from typing import Literal

import torch

from pipeline.errors import BackendUnavailableError
from pipeline.render.dense import render_dense
from pipeline.render.types import (
    BackendName,
    Camera,
    Gaussians,
    Rasterizer,
    RenderOutput,
    RenderSettings,
)

__all__ = [
    "BackendChoice",
    "Camera",
    "DenseRasterizer",
    "Gaussians",
    "Rasterizer",
    "RenderOutput",
    "RenderSettings",
    "get_rasterizer",
]

BackendChoice = Literal["auto", "cpu", "gsplat"]


class DenseRasterizer:
    """The brute-force oracle wrapped as a backend (tiny images and tests only)."""

    name: BackendName = "cpu"

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        return render_dense(gaussians, camera, settings)


def get_rasterizer(choice: BackendChoice = "auto") -> Rasterizer:
    """The backend for ``choice``; raises :class:`BackendUnavailableError` if it cannot run."""
    if choice == "gsplat":
        raise BackendUnavailableError("GPU backend unavailable: gsplat backend not built yet")
    if choice in ("cpu", "auto"):
        return DenseRasterizer()
    raise ValueError(f"unknown rasterizer backend {choice!r}")
