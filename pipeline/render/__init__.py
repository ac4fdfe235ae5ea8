"""Rasterizer backends behind one interface (:class:`~pipeline.render.types.Rasterizer`).

- ``cpu``: :class:`TileRasterizer`, this project's differentiable tile rasterizer; runs
  everywhere (numba kernels, threads follow ``torch.get_num_threads()``).
- ``gsplat``: :class:`GsplatRasterizer`, gsplat 1.5.3's CUDA ``rasterization``; the production
  path on a GPU.
- ``auto``: ``gsplat`` when CUDA and gsplat's extension are usable, else ``cpu``.

:class:`DenseRasterizer` (the brute-force oracle) stays available for tests and tiny images.
:func:`warm_up` compiles the ``cpu`` backend's numba kernels ahead of the first render.
"""

from __future__ import annotations

from typing import Literal

import torch

from pipeline.errors import BackendUnavailableError
from pipeline.render.dense import render_dense
from pipeline.render.gsplat_backend import GsplatRasterizer
from pipeline.render.tile_rasterizer import TileRasterizer, warm_up
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
    "GsplatRasterizer",
    "Rasterizer",
    "RenderOutput",
    "RenderSettings",
    "TileRasterizer",
    "get_rasterizer",
    "warm_up",
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
    """The backend for ``choice``.

    ``"gsplat"`` raises :class:`BackendUnavailableError` (``"GPU backend unavailable: ..."``)
    when CUDA or gsplat's extension cannot be used; ``"auto"`` then falls back to ``"cpu"``.
    """
    if choice == "cpu":
        return TileRasterizer()
    if choice == "gsplat":
        return GsplatRasterizer()
    if choice == "auto":
        try:
            return GsplatRasterizer()
        except BackendUnavailableError:
            return TileRasterizer()
    raise ValueError(f"unknown rasterizer backend {choice!r}; expected 'auto', 'cpu' or 'gsplat'")
