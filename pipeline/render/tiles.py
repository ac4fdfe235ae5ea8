"""Tile binning: which Gaussians can touch which 16×16 pixel tile, nearest first.

A Gaussian's alpha at a pixel is below 1/255, so the compositing contract skips it there, once
``sigma > ln(255 · opacity)`` (outside its *cut-off ellipse*). A Gaussian is binned into exactly
the tiles whose rectangle of pixel centres meets that ellipse: per row of tiles, the ellipse's
x-extent within the row's band of pixel centres gives a contiguous run of tiles
(:func:`~pipeline.render.kernels.band_x_range`). This only shortens the per-tile lists; it
never changes an image. Candidates are visible Gaussians (``radii > 0``) with opacity ≥ 1/255;
a Gaussian whose conic is not positive definite goes to every tile.

The counting and filling loops are numba kernels in :mod:`pipeline.render.kernels` (parallel over
Gaussians); the per-tile grouping is a stable counting sort, so each tile's list stays in depth
order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.render import kernels
from pipeline.render.kernels import CUT, TILE
from pipeline.render.threads import kernel_threads

__all__ = ["TileBins", "bin_gaussians", "tile_grid"]


@dataclass(frozen=True)
class TileBins:
    """Per-tile lists of Gaussians, depth-sorted, in one flat array.

    Attributes:
        gaussian_ids: ``[I]`` int64 indices into the renderer's ``[N]`` Gaussians: tile by tile
            in row-major tile order, nearest first within a tile (ties keep index order).
        tile_offsets: ``[tiles_x * tiles_y + 1]`` int64; tile ``t`` owns
            ``gaussian_ids[tile_offsets[t]:tile_offsets[t + 1]]``.
        tiles_x: tiles per image row, ``ceil(width / 16)``.
        tiles_y: tiles per image column, ``ceil(height / 16)``.
    """

    gaussian_ids: Tensor
    tile_offsets: Tensor
    tiles_x: int
    tiles_y: int

    @property
    def num_intersections(self) -> int:
        return int(self.gaussian_ids.shape[0])


def tile_grid(width: int, height: int) -> tuple[int, int]:
    """Tiles per row and per column for an image of ``width × height`` pixels."""
    return math.ceil(width / TILE), math.ceil(height / TILE)


def bin_gaussians(
    prepared: np.ndarray[Any, Any], depths: Tensor, visible: Tensor, width: int, height: int
) -> TileBins:
    """Bin Gaussians into tiles (no gradients flow through this).

    Args:
        prepared: ``[N, PREPARED_COLUMNS]`` from :func:`pipeline.render.kernels.prepare`.
        depths: ``[N]`` camera depth, the sort key.
        visible: ``[N]`` bool, False for culled Gaussians (``radii == 0``).
        width, height: image size in pixels.
    """
    tiles_x, tiles_y = tile_grid(width, height)
    reachable = torch.from_numpy(prepared[:, CUT] >= 0.0)  # opacity ≥ 1/255
    candidates = torch.nonzero(visible & reachable).squeeze(-1)
    order = torch.argsort(depths.detach()[candidates], stable=True)
    ids = candidates[order].numpy()
    counts = np.empty(ids.shape[0], dtype=np.int64)
    starts = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    with kernel_threads():
        kernels.box_tile_counts(prepared, ids, width, tiles_x, tiles_y, counts)
        np.cumsum(counts, out=starts[1:])
        pair_tiles = np.empty(int(starts[-1]), dtype=np.int64)
        kernels.list_tiles(prepared, ids, width, height, tiles_x, tiles_y, starts, pair_tiles)
        gaussian_ids, offsets = kernels.group_by_tile(pair_tiles, ids, starts, tiles_x * tiles_y)
    return TileBins(torch.from_numpy(gaussian_ids), torch.from_numpy(offsets), tiles_x, tiles_y)
