"""Numba kernels for per-tile front-to-back alpha compositing and its backward pass.

The compositing rules are exactly those of :mod:`pipeline.render.dense` (gsplat's
``rasterize_to_pixels``). One parallel iteration handles one 16×16 tile; inside it the tile's
Gaussians are visited in list order (nearest first), each over the pixels that
:func:`~pipeline.render.footprint.tile_visits` lists for it, and every pixel keeps its own
transmittance and stops at ``T ≤ 1e-4``. The backward pass walks each pixel's list back to
front from its last composited Gaussian, recovering ``T_i`` from ``T_final`` by division (the
standard 3DGS backward pass).

Arithmetic is float64 whatever the storage type (scalar float64 costs the same as float32 on a
CPU), which keeps the float32 path close to the float64 reference.

Array conventions (``N`` Gaussians, ``I`` tile intersections, ``H × W`` pixels):

- ``prepared [N, PREPARED_COLUMNS]`` from :func:`~pipeline.render.footprint.prepare`.
- ``gaussian_ids [I]``, ``tile_offsets [T + 1]``: a :class:`~pipeline.render.tiles.TileBins`.
- ``features_out [H, W, 4]``: ``Σ w_i f_i``; ``transmittance [H, W]``: ``T_final``;
  ``n_walked [H, W]`` int32: one past the tile-list position of the last Gaussian composited
  at the pixel (0 if none).
"""

# Numba infers these kernels' types; mypy need not.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import numpy as np
from numba import njit, prange

from pipeline.render.footprint import F0, FEATURES, OPACITY, TILE, A, B, C, X, Y, tile_visits

__all__ = ["GRAD_COLUMNS", "composite_backward", "composite_forward", "sum_per_gaussian"]

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
# Columns of the backward kernel's per-intersection gradients.
GRAD_COLUMNS = 12  # means2d x, y; conic a, b, c; opacity; features 0..3; |means2d| x, y


@njit(parallel=True, cache=True, fastmath=False)
def composite_forward(
    prepared, gaussian_ids, tile_offsets, tiles_x, features_out, transmittance, n_walked
):
    """Front-to-back compositing of every tile; fills the three output arrays."""
    height, width = transmittance.shape
    for tile in prange(tile_offsets.shape[0] - 1):
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        n_rows, n_cols = min(TILE, height - row0), min(TILE, width - col0)
        t = np.ones(TILE * TILE)
        acc = np.zeros((TILE * TILE, FEATURES))
        walked = np.zeros(TILE * TILE, dtype=np.int32)
        done = np.zeros(TILE * TILE, dtype=np.bool_)
        pixels = np.empty(TILE * TILE, dtype=np.int64)
        vis = np.empty(TILE * TILE)
        live = n_rows * n_cols
        start, end = tile_offsets[tile], tile_offsets[tile + 1]
        for k in range(end - start):
            gauss = prepared[gaussian_ids[start + k]]
            n = tile_visits(gauss, row0, col0, n_rows, n_cols, pixels, vis)
            live -= _composite_one(gauss, k, pixels, vis, n, t, acc, walked, done)
            if live == 0:
                break
        for r in range(n_rows):
            for col in range(n_cols):
                p = r * TILE + col
                for ch in range(FEATURES):
                    features_out[row0 + r, col0 + col, ch] = acc[p, ch]
                transmittance[row0 + r, col0 + col] = t[p]
                n_walked[row0 + r, col0 + col] = walked[p]


@njit(cache=True, fastmath=False, inline="always")
def _composite_one(gauss, k, pixels, vis, n, t, acc, walked, done):
    """Composite tile-list entry ``k`` over its visits; returns how many pixels became opaque."""
    finished = 0
    opacity = gauss[OPACITY]
    for i in range(n):
        p = pixels[i]
        alpha = min(ALPHA_MAX, opacity * vis[i])
        if done[p] or alpha < ALPHA_MIN:
            continue
        t_next = t[p] * (1.0 - alpha)
        if t_next <= T_MIN:
            done[p] = True
            finished += 1
            continue
        w = alpha * t[p]
        for ch in range(FEATURES):
            acc[p, ch] += w * gauss[F0 + ch]
        t[p] = t_next
        walked[p] = k + 1
    return finished


@njit(parallel=True, cache=True, fastmath=False)
def composite_backward(
    prepared,
    gaussian_ids,
    tile_offsets,
    tiles_x,
    transmittance,
    n_walked,
    grad_features,
    grad_alpha,
    grad_isect,
):
    """Add gradients per tile intersection into ``grad_isect [I, 12]`` (zeros on entry).

    ``grad_features [H, W, 4]`` and ``grad_alpha [H, W]`` are the upstream gradients of
    ``features_out`` and of ``1 - T_final``. Each pixel walks its list back to front from its
    last composited Gaussian, recovering ``T_i`` from ``T_final`` by division.
    """
    height, width = transmittance.shape
    for tile in prange(tile_offsets.shape[0] - 1):
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        n_rows, n_cols = min(TILE, height - row0), min(TILE, width - col0)
        pixels = _load_pixels(row0, col0, n_rows, n_cols, transmittance, n_walked,
                              grad_features, grad_alpha)  # fmt: skip
        t, walked = pixels[:, 0].copy(), pixels[:, 6].astype(np.int64)
        behind = np.zeros((TILE * TILE, FEATURES))
        visit_pixels = np.empty(TILE * TILE, dtype=np.int64)
        vis = np.empty(TILE * TILE)
        start = tile_offsets[tile]
        for k in range(walked.max() - 1, -1, -1):
            gauss = prepared[gaussian_ids[start + k]]
            n = tile_visits(gauss, row0, col0, n_rows, n_cols, visit_pixels, vis)
            _backward_one(gauss, k, row0, col0, visit_pixels, vis, n, pixels, t, walked, behind,
                          grad_isect[start + k])  # fmt: skip


@njit(cache=True, fastmath=False, inline="always")
def _load_pixels(row0, col0, n_rows, n_cols, transmittance, n_walked, grad_features, grad_alpha):
    """Per-pixel table ``[256, 7]``: T_final, grad f0..f3, grad alpha, walked."""
    pixels = np.zeros((TILE * TILE, 7))
    for r in range(n_rows):
        for col in range(n_cols):
            p = r * TILE + col
            pixels[p, 0] = transmittance[row0 + r, col0 + col]
            for ch in range(4):
                pixels[p, 1 + ch] = grad_features[row0 + r, col0 + col, ch]
            pixels[p, 5] = grad_alpha[row0 + r, col0 + col]
            pixels[p, 6] = n_walked[row0 + r, col0 + col]
    return pixels


@njit(cache=True, fastmath=False, inline="always")
def _backward_one(gauss, k, row0, col0, visit_pixels, vis, n, pixels, t, walked, behind, grads):
    """Add tile-list entry ``k``'s gradients over its visits to ``grads [12]``."""
    opacity, a, b, c = gauss[OPACITY], gauss[A], gauss[B], gauss[C]
    f0, f1, f2, f3 = gauss[F0], gauss[F0 + 1], gauss[F0 + 2], gauss[F0 + 3]
    # d/d means2d x, y; d/d conic a, b, c; d/d opacity; d/d f0..f3; |d/d means2d| x, y
    gx = gy = ga = gb = gc = go = g0 = g1 = g2 = g3 = ax = ay = 0.0
    for i in range(n):
        p = visit_pixels[i]
        alpha = min(ALPHA_MAX, opacity * vis[i])
        if k >= walked[p] or alpha < ALPHA_MIN:
            continue
        inv_one_minus = 1.0 / (1.0 - alpha)
        t_i = t[p] * inv_one_minus  # the transmittance in front of this Gaussian
        t[p] = t_i
        w = alpha * t_i
        pixel = pixels[p]
        g0 += w * pixel[1]
        g1 += w * pixel[2]
        g2 += w * pixel[3]
        g3 += w * pixel[4]
        grad_alpha = (
            (f0 * t_i - behind[p, 0] * inv_one_minus) * pixel[1]
            + (f1 * t_i - behind[p, 1] * inv_one_minus) * pixel[2]
            + (f2 * t_i - behind[p, 2] * inv_one_minus) * pixel[3]
            + (f3 * t_i - behind[p, 3] * inv_one_minus) * pixel[4]
            + pixel[0] * inv_one_minus * pixel[5]
        )
        behind[p, 0] += w * f0
        behind[p, 1] += w * f1
        behind[p, 2] += w * f2
        behind[p, 3] += w * f3
        if opacity * vis[i] > ALPHA_MAX:
            continue  # alpha is clamped here: no gradient through sigma or opacity
        grad_sigma = -opacity * vis[i] * grad_alpha
        dx = gauss[X] - (col0 + p % TILE + 0.5)
        dy = gauss[Y] - (row0 + p // TILE + 0.5)
        px = grad_sigma * (a * dx + b * dy)
        py = grad_sigma * (b * dx + c * dy)
        gx += px
        gy += py
        ax += abs(px)
        ay += abs(py)
        ga += 0.5 * grad_sigma * dx * dx
        gb += grad_sigma * dx * dy
        gc += 0.5 * grad_sigma * dy * dy
        go += vis[i] * grad_alpha
    grads[0] += gx
    grads[1] += gy
    grads[2] += ga
    grads[3] += gb
    grads[4] += gc
    grads[5] += go
    grads[6] += g0
    grads[7] += g1
    grads[8] += g2
    grads[9] += g3
    grads[10] += ax
    grads[11] += ay


@njit(cache=True, fastmath=False)
def sum_per_gaussian(gaussian_ids, grad_isect, out):
    """``out[g] += grad_isect[i]`` for every intersection ``i`` of Gaussian ``g``."""
    for i in range(gaussian_ids.shape[0]):
        g = gaussian_ids[i]
        for j in range(grad_isect.shape[1]):
            out[g, j] += grad_isect[i, j]
