"""Numba kernels for per-tile front-to-back alpha compositing and its backward pass.

The compositing rules are exactly those of :mod:`pipeline.render.dense` (gsplat's
``rasterize_to_pixels``). Each kernel runs one tile per parallel iteration and one pixel at a
time inside it, so a pixel stops walking its tile's list as soon as it is opaque. Arithmetic is
done in float64 whatever the storage type: on a CPU scalar float64 costs the same as float32,
and it keeps the float32 path close to the float64 reference.

Array conventions (``N`` Gaussians, ``I`` tile intersections, ``H × W`` pixels):

- ``means2d [N, 2]``, ``conics [N, 3]`` (``a, b, c``), ``opacities [N]``, ``features [N, 4]``
  (r, g, b, camera depth): per Gaussian, float32 or float64, C-contiguous.
- ``gaussian_ids [I]`` and ``tile_offsets [T + 1]``: a :class:`~pipeline.render.tiles.TileBins`.
- ``features_out [H, W, 4]``: ``Σ w_i f_i``; ``transmittance [H, W]``: ``T_final``;
  ``n_walked [H, W]`` int32: how many entries of its tile's list a pixel went through, so the
  backward pass can start at the last Gaussian that was composited.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["composite_backward", "composite_forward", "sum_per_gaussian"]

TILE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
# Beyond sigma = ln(255 · opacity) the alpha is below 1/255; the margin keeps the shortcut
# strictly on the side where the exact test would skip the Gaussian too, so results are exact.
CUTOFF_MARGIN = 1e-6
# Columns of the per-tile scratch table.
_X, _Y, _A, _B, _C, _O, _CUT, _F0 = 0, 1, 2, 3, 4, 5, 6, 7
_COLS = 11


@njit(cache=True, fastmath=False, inline="always")
def _gather_tile(means2d, conics, opacities, features, gaussian_ids, start, end):  # type: ignore[no-untyped-def]
    """Copy a tile's Gaussians into a contiguous float64 table ``[_COLS, n]``."""
    n = end - start
    table = np.empty((_COLS, n), dtype=np.float64)
    for k in range(n):
        g = gaussian_ids[start + k]
        opacity = np.float64(opacities[g])
        table[_X, k] = means2d[g, 0]
        table[_Y, k] = means2d[g, 1]
        table[_A, k] = conics[g, 0]
        table[_B, k] = conics[g, 1]
        table[_C, k] = conics[g, 2]
        table[_O, k] = opacity
        cut = math.log(opacity * 255.0) if opacity > 0.0 else -math.inf
        table[_CUT, k] = cut + CUTOFF_MARGIN * (1.0 + abs(cut))
        for ch in range(4):
            table[_F0 + ch, k] = features[g, ch]
    return table


@njit(parallel=True, cache=True, fastmath=False)
def composite_forward(  # type: ignore[no-untyped-def]
    means2d,
    conics,
    opacities,
    features,
    gaussian_ids,
    tile_offsets,
    tiles_x,
    features_out,
    transmittance,
    n_walked,
):
    """Front-to-back compositing of every tile; fills the three output arrays."""
    height, width = transmittance.shape
    n_tiles = tile_offsets.shape[0] - 1
    for tile in prange(n_tiles):
        start, end = tile_offsets[tile], tile_offsets[tile + 1]
        table = _gather_tile(means2d, conics, opacities, features, gaussian_ids, start, end)
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        for row in range(row0, min(row0 + TILE, height)):
            for col in range(col0, min(col0 + TILE, width)):
                _forward_pixel(
                    table, col + 0.5, row + 0.5, row, col, features_out, transmittance, n_walked
                )


@njit(cache=True, fastmath=False, inline="always")
def _forward_pixel(table, px, py, row, col, features_out, transmittance, n_walked):  # type: ignore[no-untyped-def]
    t = 1.0
    f0 = f1 = f2 = f3 = 0.0
    walked = 0
    for k in range(table.shape[1]):
        dx = table[_X, k] - px
        dy = table[_Y, k] - py
        sigma = 0.5 * (table[_A, k] * dx * dx + table[_C, k] * dy * dy) + table[_B, k] * dx * dy
        if sigma < 0.0 or sigma > table[_CUT, k]:
            continue
        alpha = min(ALPHA_MAX, table[_O, k] * math.exp(-sigma))
        if alpha < ALPHA_MIN:
            continue
        t_next = t * (1.0 - alpha)
        if t_next <= T_MIN:
            break
        w = alpha * t
        f0 += w * table[_F0, k]
        f1 += w * table[_F0 + 1, k]
        f2 += w * table[_F0 + 2, k]
        f3 += w * table[_F0 + 3, k]
        t = t_next
        walked = k + 1
    features_out[row, col, 0] = f0
    features_out[row, col, 1] = f1
    features_out[row, col, 2] = f2
    features_out[row, col, 3] = f3
    transmittance[row, col] = t
    n_walked[row, col] = walked


@njit(parallel=True, cache=True, fastmath=False)
def composite_backward(  # type: ignore[no-untyped-def]
    means2d,
    conics,
    opacities,
    features,
    gaussian_ids,
    tile_offsets,
    tiles_x,
    transmittance,
    n_walked,
    grad_features,
    grad_alpha,
    grad_isect,
):
    """Gradients per tile intersection, ``grad_isect [I, 12]``.

    Columns: d/d means2d (x, y), d/d conic (a, b, c), d/d opacity, d/d features (4), and the
    sums of ``|d/d means2d|`` per pixel (x, y). ``grad_features [H, W, 4]`` and
    ``grad_alpha [H, W]`` are the upstream gradients of ``features_out`` and ``1 - T_final``.
    """
    height, width = transmittance.shape
    n_tiles = tile_offsets.shape[0] - 1
    for tile in prange(n_tiles):
        start, end = tile_offsets[tile], tile_offsets[tile + 1]
        table = _gather_tile(means2d, conics, opacities, features, gaussian_ids, start, end)
        grads = np.zeros((end - start, 12), dtype=np.float64)
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        for row in range(row0, min(row0 + TILE, height)):
            for col in range(col0, min(col0 + TILE, width)):
                _backward_pixel(
                    table, col + 0.5, row + 0.5, transmittance[row, col], n_walked[row, col],
                    grad_features[row, col], grad_alpha[row, col], grads,
                )  # fmt: skip
        for k in range(end - start):
            for j in range(12):
                grad_isect[start + k, j] = grads[k, j]


@njit(cache=True, fastmath=False, inline="always")
def _backward_pixel(table, px, py, t_final, walked, grad_f, grad_a, grads):  # type: ignore[no-untyped-def]
    """Walk one pixel's list back to front, recovering each ``T_i`` from ``T_final``."""
    g0, g1, g2, g3 = grad_f[0], grad_f[1], grad_f[2], grad_f[3]
    t = np.float64(t_final)
    behind0 = behind1 = behind2 = behind3 = 0.0  # Σ_{j>i} w_j f_j
    for k in range(walked - 1, -1, -1):
        dx = table[_X, k] - px
        dy = table[_Y, k] - py
        a, b, c = table[_A, k], table[_B, k], table[_C, k]
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        if sigma < 0.0 or sigma > table[_CUT, k]:
            continue
        opacity = table[_O, k]
        vis = math.exp(-sigma)
        alpha = min(ALPHA_MAX, opacity * vis)
        if alpha < ALPHA_MIN:
            continue
        inv_one_minus = 1.0 / (1.0 - alpha)
        t *= inv_one_minus  # now T_i, the transmittance in front of Gaussian k
        w = alpha * t
        f0, f1, f2, f3 = table[_F0, k], table[_F0 + 1, k], table[_F0 + 2, k], table[_F0 + 3, k]
        grads[k, 6] += w * g0
        grads[k, 7] += w * g1
        grads[k, 8] += w * g2
        grads[k, 9] += w * g3
        grad_alpha_k = (
            (f0 * t - behind0 * inv_one_minus) * g0
            + (f1 * t - behind1 * inv_one_minus) * g1
            + (f2 * t - behind2 * inv_one_minus) * g2
            + (f3 * t - behind3 * inv_one_minus) * g3
            + t_final * inv_one_minus * grad_a
        )
        if opacity * vis <= ALPHA_MAX:  # the clamp has zero gradient
            grad_sigma = -opacity * vis * grad_alpha_k
            gx = grad_sigma * (a * dx + b * dy)
            gy = grad_sigma * (b * dx + c * dy)
            grads[k, 0] += gx
            grads[k, 1] += gy
            grads[k, 2] += 0.5 * grad_sigma * dx * dx
            grads[k, 3] += grad_sigma * dx * dy
            grads[k, 4] += 0.5 * grad_sigma * dy * dy
            grads[k, 5] += vis * grad_alpha_k
            grads[k, 10] += abs(gx)
            grads[k, 11] += abs(gy)
        behind0 += w * f0
        behind1 += w * f1
        behind2 += w * f2
        behind3 += w * f3


@njit(cache=True, fastmath=False)
def sum_per_gaussian(gaussian_ids, grad_isect, out):  # type: ignore[no-untyped-def]
    """``out[g] += grad_isect[i]`` for every intersection ``i`` of Gaussian ``g``."""
    for i in range(gaussian_ids.shape[0]):
        g = gaussian_ids[i]
        for j in range(grad_isect.shape[1]):
            out[g, j] += grad_isect[i, j]
