"""Tile binning: which Gaussians can touch which 16×16 pixel tile, nearest first.

A Gaussian's alpha at a pixel is below 1/255, so the compositing contract skips it there, once
``sigma > ln(255 · opacity)`` (its *cut-off ellipse*). A Gaussian is binned into exactly the
tiles whose rectangle of pixel centres meets that ellipse (tested exactly: the minimum of the
quadratic ``sigma`` over the rectangle), which only shortens the per-tile lists and never changes
an image. Candidates are visible Gaussians (``radii > 0``) with opacity ≥ 1/255.

The counting and filling loops are numba kernels (parallel over Gaussians); the per-tile grouping
is a stable counting sort, so each tile's list stays in depth order.
"""

# Numba infers these kernels' types; mypy need not.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from pipeline.render.dense import ALPHA_MIN
from pipeline.render.threads import kernel_threads

__all__ = ["TILE_SIZE", "TileBins", "bin_gaussians", "tile_grid"]

TILE_SIZE = 16
# Relative slack on the cut-off ellipse, so rounding never drops a tile that a pixel needs.
_CUT_SLACK = 1e-6


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
    return math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)


def bin_gaussians(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    depths: Tensor,
    visible: Tensor,
    width: int,
    height: int,
) -> TileBins:
    """Bin Gaussians into tiles (no gradients flow through this).

    Args:
        means2d: ``[N, 2]`` screen centres, pixels.
        conics: ``[N, 3]`` inverse 2D covariances ``(a, b, c)``.
        opacities: ``[N]``.
        depths: ``[N]`` camera depth, the sort key.
        visible: ``[N]`` bool, False for culled Gaussians (``radii == 0``).
        width, height: image size in pixels.
    """
    tiles_x, tiles_y = tile_grid(width, height)
    with torch.no_grad():
        candidates = torch.nonzero(visible & (opacities.detach() >= ALPHA_MIN)).squeeze(-1)
        order = torch.argsort(depths.detach()[candidates], stable=True)
        ids = candidates[order].numpy()
        args = (
            _float64(means2d), _float64(conics), _float64(opacities), ids,
            width, height, tiles_x, tiles_y,
        )  # fmt: skip
    counts = np.empty(ids.shape[0], dtype=np.int64)
    starts = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    with kernel_threads():
        _count_tiles(*args, counts)
        np.cumsum(counts, out=starts[1:])
        pair_tiles = np.empty(int(starts[-1]), dtype=np.int64)
        _list_tiles(*args, starts, pair_tiles)
        gaussian_ids, offsets = _group_by_tile(pair_tiles, ids, starts, tiles_x * tiles_y)
    return TileBins(torch.from_numpy(gaussian_ids), torch.from_numpy(offsets), tiles_x, tiles_y)


def _float64(t: Tensor) -> np.ndarray[Any, Any]:
    return t.detach().to(torch.float64).contiguous().numpy()


@njit(cache=True, fastmath=False)
def _cutoff(opacity):
    """``sigma`` beyond which the alpha is below 1/255, with a little slack outwards."""
    cut = math.log(opacity * 255.0)
    return cut + _CUT_SLACK * (1.0 + abs(cut))


@njit(cache=True, fastmath=False)
def _tile_span(m, extent, tiles):
    """First and one-past-last tile index along one axis for ``m ± extent`` pixels."""
    # Clamp in floating point first: an infinite extent must not reach the int conversion.
    limit = float(tiles * TILE_SIZE)
    lo = math.floor(min(max(m - extent, 0.0), limit) / TILE_SIZE)
    hi = math.ceil(min(max(m + extent, 0.0), limit) / TILE_SIZE)
    return lo, hi


@njit(cache=True, fastmath=False)
def _min_sigma_on_rect(dx0, dx1, dy0, dy1, a, b, c):
    """Minimum of ``0.5 (a dx² + c dy²) + b dx dy`` over ``[dx0, dx1] × [dy0, dy1]``.

    ``d = mean - pixel``; requires a positive-definite conic.
    """
    if dx0 <= 0.0 <= dx1 and dy0 <= 0.0 <= dy1:
        return 0.0
    best = math.inf
    for dx in (dx0, dx1):  # vertical edges: best dy for this dx, clamped to the edge
        dy = min(max(-b * dx / c, dy0), dy1)
        best = min(best, 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy)
    for dy in (dy0, dy1):
        dx = min(max(-b * dy / a, dx0), dx1)
        best = min(best, 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy)
    return best


@njit(cache=True, fastmath=False)
def _hits_tile(mx, my, a, b, c, cut, tx, ty, width, height):
    """Does the cut-off ellipse meet the pixel centres' rectangle of tile ``(tx, ty)``?"""
    if not (a > 0.0 and c > 0.0 and a * c - b * b > 0.0):
        return True  # degenerate conic: keep every tile of the box, the kernel decides
    x0 = tx * TILE_SIZE + 0.5
    x1 = min((tx + 1) * TILE_SIZE, width) - 0.5
    y0 = ty * TILE_SIZE + 0.5
    y1 = min((ty + 1) * TILE_SIZE, height) - 0.5
    return _min_sigma_on_rect(mx - x1, mx - x0, my - y1, my - y0, a, b, c) <= cut


@njit(cache=True, fastmath=False)
def _box(means2d, conics, opacities, g, tiles_x, tiles_y):
    """Tile ranges ``(x0, x1, y0, y1)`` of Gaussian ``g``'s cut-off box and its cut-off."""
    a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
    cut = _cutoff(opacities[g])
    det = a * c - b * b
    if det > 0.0 and a > 0.0 and c > 0.0:
        # The conic's inverse is the 2D covariance: var_x = c / det, var_y = a / det.
        ext_x, ext_y = math.sqrt(2.0 * cut * c / det), math.sqrt(2.0 * cut * a / det)
    else:
        ext_x = ext_y = math.inf
    x0, x1 = _tile_span(means2d[g, 0], ext_x + 1e-6, tiles_x)
    y0, y1 = _tile_span(means2d[g, 1], ext_y + 1e-6, tiles_y)
    return x0, x1, y0, y1, cut


@njit(parallel=True, cache=True, fastmath=False)
def _count_tiles(means2d, conics, opacities, ids, width, height, tiles_x, tiles_y, counts):
    for i in prange(ids.shape[0]):
        g = ids[i]
        x0, x1, y0, y1, cut = _box(means2d, conics, opacities, g, tiles_x, tiles_y)
        a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
        n = 0
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                if _hits_tile(means2d[g, 0], means2d[g, 1], a, b, c, cut, tx, ty, width, height):
                    n += 1
        counts[i] = n


@njit(parallel=True, cache=True, fastmath=False)
def _list_tiles(means2d, conics, opacities, ids, width, height, tiles_x, tiles_y, starts, out):
    for i in prange(ids.shape[0]):
        g = ids[i]
        x0, x1, y0, y1, cut = _box(means2d, conics, opacities, g, tiles_x, tiles_y)
        a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
        n = starts[i]
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                if _hits_tile(means2d[g, 0], means2d[g, 1], a, b, c, cut, tx, ty, width, height):
                    out[n] = ty * tiles_x + tx
                    n += 1


@njit(cache=True, fastmath=False)
def _group_by_tile(pair_tiles, ids, starts, n_tiles):
    """Stable counting sort of the (tile, Gaussian) pairs by tile."""
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    for t in pair_tiles:
        offsets[t + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    cursor = offsets[:-1].copy()
    grouped = np.empty(pair_tiles.shape[0], dtype=np.int64)
    for i in range(ids.shape[0]):
        for j in range(starts[i], starts[i + 1]):
            t = pair_tiles[j]
            grouped[cursor[t]] = ids[i]
            cursor[t] += 1
    return grouped, offsets
