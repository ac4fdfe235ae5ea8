"""Tile binning against a per-pixel brute force: no needed pair lost, lists depth-sorted."""

from __future__ import annotations

import itertools

import pytest
import torch

from pipeline.render.composite import prepare_footprints
from pipeline.render.dense import ALPHA_MIN
from pipeline.render.kernels import TILE
from pipeline.render.projection import project
from pipeline.render.tiles import TileBins, bin_gaussians, tile_grid
from tests.pipeline.render.factories import look_at_camera, random_gaussians


def _needed_pairs(width: int, height: int, seed: int) -> tuple[TileBins, set[tuple[int, int]]]:
    """Bins, and every (tile, Gaussian) pair with alpha ≥ 1/255 at some pixel of the tile."""
    gaussians = random_gaussians(150, seed=seed)
    camera = look_at_camera((0.2 * seed, -0.5, -2.5), width=width, height=height)
    proj = project(gaussians, camera)
    visible = (proj.radii > 0).all(dim=-1)
    features = torch.zeros(len(gaussians), 4, dtype=torch.float64)
    prepared = prepare_footprints(proj.means2d, proj.conics, gaussians.opacities, features)
    bins = bin_gaussians(prepared, proj.depths, visible, width, height)
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5,
        torch.arange(width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    d = proj.means2d[:, None, None, :] - torch.stack([u, v], dim=-1)  # [N, H, W, 2]
    a, b, c = (x[:, None, None] for x in proj.conics.unbind(-1))
    sigma = 0.5 * (a * d[..., 0] ** 2 + c * d[..., 1] ** 2) + b * d[..., 0] * d[..., 1]
    alpha = gaussians.opacities[:, None, None] * torch.exp(-sigma)
    used = (sigma >= 0) & (alpha >= ALPHA_MIN) & visible[:, None, None]
    tiles_x, _ = tile_grid(width, height)
    g, row, col = torch.nonzero(used, as_tuple=True)
    tile = (row // TILE) * tiles_x + col // TILE
    return bins, set(zip(tile.tolist(), g.tolist(), strict=True))


@pytest.mark.parametrize(("width", "height", "seed"), [(64, 48, 0), (41, 23, 1), (16, 80, 2)])
def test_bins_hold_every_needed_pair_in_depth_order(width: int, height: int, seed: int) -> None:
    bins, needed = _needed_pairs(width, height, seed)
    tiles_x, tiles_y = tile_grid(width, height)
    assert (bins.tiles_x, bins.tiles_y) == (tiles_x, tiles_y)
    offsets = bins.tile_offsets.tolist()
    assert offsets[0] == 0 and offsets[-1] == bins.num_intersections
    assert all(lo <= hi for lo, hi in itertools.pairwise(offsets))
    gaussians = random_gaussians(150, seed=seed)
    camera = look_at_camera((0.2 * seed, -0.5, -2.5), width=width, height=height)
    depths = project(gaussians, camera).depths
    binned = set()
    for tile in range(tiles_x * tiles_y):
        ids = bins.gaussian_ids[offsets[tile] : offsets[tile + 1]]
        assert len(set(ids.tolist())) == len(ids), "a Gaussian listed twice in one tile"
        assert (depths[ids].diff() >= 0).all(), "tile list not sorted nearest first"
        binned |= {(tile, g) for g in ids.tolist()}
    assert needed, "the scene should touch some pixels"
    assert needed <= binned
    # The exact ellipse test keeps the lists short: few binned pairs touch no pixel at all.
    assert len(binned) <= 1.5 * len(needed)


def test_no_visible_gaussians_gives_empty_bins() -> None:
    none = torch.zeros(5, dtype=torch.bool)
    prepared = prepare_footprints(torch.zeros(5, 2), torch.ones(5, 3), torch.ones(5),
                                  torch.zeros(5, 4))  # fmt: skip
    bins = bin_gaussians(prepared, torch.ones(5), none, 33, 17)
    assert bins.num_intersections == 0
    assert bins.tile_offsets.tolist() == [0] * (3 * 2 + 1)
