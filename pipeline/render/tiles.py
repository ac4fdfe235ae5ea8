"""Tile binning: which Gaussians can touch which 16×16 pixel tile, nearest first.

Every visible Gaussian is assigned to the tiles its screen bounding box overlaps. The box is the
opacity-aware one (as gsplat 1.5.3's CUDA projection computes it): outside
``sqrt(2 ln(255 · opacity))`` standard deviations along an axis the Gaussian's alpha is below
1/255 at every pixel, so the compositing contract skips it there anyway. This only shortens the
per-tile lists; it never changes an image. The box is never larger than the ``3.33 σ`` one
reported in ``RenderOutput.radii``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.render.dense import ALPHA_MIN
from pipeline.render.projection import BBOX_SIGMAS

__all__ = ["TILE_SIZE", "TileBins", "bin_gaussians"]

TILE_SIZE = 16


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
        ids = _depth_sorted_candidates(depths, visible, opacities)
        lo, hi = _tile_ranges(means2d[ids], conics[ids], opacities[ids], tiles_x, tiles_y)
        span = (hi - lo).clamp(min=0)
        counts = span[:, 0] * span[:, 1]
        nonempty = counts > 0
        ids, lo, span, counts = ids[nonempty], lo[nonempty], span[nonempty], counts[nonempty]
        tile_ids, owner = _expand_to_tiles(lo, span, counts, tiles_x)
        # Candidates are already nearest first, so a stable sort by tile keeps depth order.
        tile_ids, order = torch.sort(tile_ids, stable=True)
        gaussian_ids = ids[owner[order]]
        per_tile = torch.bincount(tile_ids, minlength=tiles_x * tiles_y)
        offsets = torch.zeros(tiles_x * tiles_y + 1, dtype=torch.int64)
        torch.cumsum(per_tile, dim=0, out=offsets[1:])
    return TileBins(gaussian_ids, offsets, tiles_x, tiles_y)


def _depth_sorted_candidates(depths: Tensor, visible: Tensor, opacities: Tensor) -> Tensor:
    """Indices ``[M]`` of the Gaussians that can contribute, nearest first (stable)."""
    candidates = torch.nonzero(visible & (opacities >= ALPHA_MIN)).squeeze(-1)
    order = torch.argsort(depths[candidates], stable=True)
    return candidates[order]


def _tile_ranges(
    means2d: Tensor, conics: Tensor, opacities: Tensor, tiles_x: int, tiles_y: int
) -> tuple[Tensor, Tensor]:
    """First and one-past-last tile ``[M, 2]`` (x, y) of each opacity-aware bounding box."""
    a, b, c = conics.to(torch.float64).unbind(-1)
    det = a * c - b * b
    # The inverse of the conic is the 2D covariance: var_x = c / det, var_y = a / det.
    sigma_xy = torch.stack([c / det, a / det], dim=-1).clamp(min=0).sqrt()
    o = opacities.to(torch.float64).clamp(min=ALPHA_MIN)
    extent = torch.sqrt(2.0 * torch.log(o / ALPHA_MIN)).clamp(max=BBOX_SIGMAS)
    # A hair of slack keeps rounding at the box edge on the safe side.
    radius = torch.ceil(extent.unsqueeze(-1) * sigma_xy * (1.0 + 1e-6) + 1e-6)
    centre = means2d.to(torch.float64)
    lo = torch.floor((centre - radius) / TILE_SIZE)
    hi = torch.ceil((centre + radius) / TILE_SIZE)
    limit = torch.tensor([tiles_x, tiles_y], dtype=torch.float64)
    lo = torch.minimum(lo.clamp(min=0), limit)
    hi = torch.minimum(hi.clamp(min=0), limit)
    return lo.to(torch.int64), hi.to(torch.int64)


def _expand_to_tiles(
    lo: Tensor, span: Tensor, counts: Tensor, tiles_x: int
) -> tuple[Tensor, Tensor]:
    """One row per (Gaussian, tile) pair: tile index ``[I]`` and owner position ``[I]``."""
    owner = torch.repeat_interleave(torch.arange(counts.shape[0]), counts)
    first = torch.cumsum(counts, dim=0) - counts
    local = torch.arange(owner.shape[0]) - first[owner]
    width = span[owner, 0]
    tx = lo[owner, 0] + local % width
    ty = lo[owner, 1] + torch.div(local, width, rounding_mode="floor")
    return ty * tiles_x + tx, owner
