"""Numba kernels for per-tile front-to-back alpha compositing and its backward pass.

The compositing rules are exactly those of :mod:`pipeline.render.dense` (gsplat's
``rasterize_to_pixels``). One parallel iteration handles one 16×16 tile; inside it the tile's
Gaussians are visited in list order (nearest first) and each one only touches the pixels inside
its *cut-off ellipse* ``sigma ≤ ln(255 · opacity)``, row by row: outside it the alpha is below
1/255 and the contract skips the Gaussian anyway. Along a row ``sigma`` is quadratic in the
column, so ``exp(-sigma)`` follows a two-term product recurrence: two ``exp`` per row instead of
one per pixel. Every pixel keeps its own transmittance and stops at ``T ≤ 1e-4``.

Arithmetic is float64 whatever the storage type (scalar float64 costs the same as float32 on a
CPU), which keeps the float32 path close to the float64 reference.

Array conventions (``N`` Gaussians, ``I`` tile intersections, ``H × W`` pixels):

- ``prepared [N, 13]`` float64 from :func:`prepare`: per Gaussian ``x, y, a, b, c, opacity,
  cut-off, exp(-a), smooth flag, f0..f3`` (features: r, g, b, camera depth).
- ``gaussian_ids [I]``, ``tile_offsets [T + 1]``: a :class:`~pipeline.render.tiles.TileBins`.
- ``features_out [H, W, 4]``: ``Σ w_i f_i``; ``transmittance [H, W]``: ``T_final``;
  ``n_walked [H, W]`` int32: one past the tile-list position of the last Gaussian composited
  at the pixel (0 if none), where the backward walk starts.
"""

# Numba infers these kernels' types; mypy need not.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["GRAD_COLUMNS", "composite_backward", "composite_forward", "prepare", "sum_per_gaussian"]

TILE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
# Relative slack on the cut-off, so that the shortcut only ever skips pixels where the exact
# alpha test would skip the Gaussian too.
CUT_SLACK = 1e-6
# Row spans are widened by this many pixels for the same reason.
SPAN_SLACK = 1e-3
# Above this the conic is too sharp for the product recurrence to stay in float64 range
# (only reachable with eps2d < 0.05); such Gaussians take the per-pixel exp path.
MAX_SMOOTH_CONIC = 20.0
# Columns of ``prepared``.
_X, _Y, _A, _B, _C, _O, _CUT, _Q, _SMOOTH, _F0 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
PREPARED_COLUMNS = 13
# Columns of the backward kernel's per-intersection gradients.
GRAD_COLUMNS = 12  # means2d x, y; conic a, b, c; opacity; features 0..3; |means2d| x, y


@njit(parallel=True, cache=True, fastmath=False)
def prepare(means2d, conics, opacities, features):
    """Per-Gaussian constants ``[N, 13]`` float64 for both kernels."""
    n = means2d.shape[0]
    out = np.empty((n, PREPARED_COLUMNS), dtype=np.float64)
    for g in prange(n):
        a, b, c = np.float64(conics[g, 0]), np.float64(conics[g, 1]), np.float64(conics[g, 2])
        opacity = np.float64(opacities[g])
        cut = math.log(opacity * 255.0) if opacity > 0.0 else -math.inf
        smooth = 0.0 < a <= MAX_SMOOTH_CONIC and 0.0 < c <= MAX_SMOOTH_CONIC and a * c > b * b
        out[g, _X], out[g, _Y] = means2d[g, 0], means2d[g, 1]
        out[g, _A], out[g, _B], out[g, _C], out[g, _O] = a, b, c, opacity
        out[g, _CUT] = cut + CUT_SLACK * (1.0 + abs(cut))
        out[g, _Q] = math.exp(-a) if smooth else 0.0
        out[g, _SMOOTH] = 1.0 if smooth else 0.0
        for ch in range(4):
            out[g, _F0 + ch] = features[g, ch]
    return out


@njit(cache=True, fastmath=False, inline="always")
def _row_range(gauss, row0, n_rows):
    """Tile-local rows ``[lo, hi]`` that the cut-off ellipse reaches (all rows if not smooth)."""
    if gauss[_SMOOTH] == 0.0:
        return 0, n_rows - 1
    a, b, c = gauss[_A], gauss[_B], gauss[_C]
    half = math.sqrt(2.0 * gauss[_CUT] * a / (a * c - b * b)) + SPAN_SLACK
    lo = max(0, math.ceil(gauss[_Y] - half - 0.5 - row0))
    hi = min(n_rows - 1, math.floor(gauss[_Y] + half - 0.5 - row0))
    return lo, hi


@njit(cache=True, fastmath=False, inline="always")
def _col_range(gauss, dy, col0, n_cols):
    """Tile-local columns ``[lo, hi]`` of the cut-off ellipse on the row at offset ``dy``."""
    if gauss[_SMOOTH] == 0.0:
        return 0, n_cols - 1
    a, b, c = gauss[_A], gauss[_B], gauss[_C]
    disc = max(0.0, 2.0 * a * gauss[_CUT] - dy * dy * (a * c - b * b))
    centre = gauss[_X] + b * dy / a  # where sigma is smallest on this row
    half = math.sqrt(disc) / a + SPAN_SLACK
    lo = max(0, math.ceil(centre - half - 0.5 - col0))
    hi = min(n_cols - 1, math.floor(centre + half - 0.5 - col0))
    return lo, hi


@njit(cache=True, fastmath=False, inline="always")
def _sigma(gauss, dx, dy):
    return 0.5 * (gauss[_A] * dx * dx + gauss[_C] * dy * dy) + gauss[_B] * dx * dy


@njit(cache=True, fastmath=False, inline="always")
def _row_start(gauss, dx, dy):
    """``exp(-sigma)`` at the row's first pixel and its ratio to the next pixel's."""
    a = gauss[_A]
    vis = math.exp(-_sigma(gauss, dx, dy))
    # sigma(dx - 1) - sigma(dx) = -a dx + a / 2 - b dy; each step right adds a to it.
    ratio = math.exp(a * dx - 0.5 * a + gauss[_B] * dy)
    return vis, ratio


@njit(cache=True, fastmath=False, inline="always")
def _pixel_vis(gauss, dx, dy):
    """``exp(-sigma)`` on the per-pixel path, or -1 where the contract skips the pixel."""
    sigma = _sigma(gauss, dx, dy)
    if sigma < 0.0 or sigma > gauss[_CUT]:
        return -1.0
    return math.exp(-sigma)


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
        acc = np.zeros((TILE * TILE, 4))
        walked = np.zeros(TILE * TILE, dtype=np.int32)
        done = np.zeros(TILE * TILE, dtype=np.bool_)
        live = n_rows * n_cols
        start, end = tile_offsets[tile], tile_offsets[tile + 1]
        for k in range(end - start):
            gauss = prepared[gaussian_ids[start + k]]
            live -= _forward_gaussian(gauss, k, row0, col0, n_rows, n_cols, t, acc, walked, done)
            if live == 0:
                break
        for r in range(n_rows):
            for col in range(n_cols):
                p = r * TILE + col
                for ch in range(4):
                    features_out[row0 + r, col0 + col, ch] = acc[p, ch]
                transmittance[row0 + r, col0 + col] = t[p]
                n_walked[row0 + r, col0 + col] = walked[p]


@njit(cache=True, fastmath=False, inline="always")
def _forward_gaussian(gauss, k, row0, col0, n_rows, n_cols, t, acc, walked, done):
    """Composite tile-list entry ``k`` into the tile's pixels; returns how many became opaque."""
    finished = 0
    if gauss[_CUT] < 0.0:
        return 0
    smooth = gauss[_SMOOTH] != 0.0
    r_lo, r_hi = _row_range(gauss, row0, n_rows)
    for r in range(r_lo, r_hi + 1):
        dy = gauss[_Y] - (row0 + r + 0.5)
        c_lo, c_hi = _col_range(gauss, dy, col0, n_cols)
        if c_lo > c_hi:
            continue
        vis, ratio = (
            _row_start(gauss, gauss[_X] - (col0 + c_lo + 0.5), dy) if smooth else (0.0, 0.0)
        )
        for col in range(c_lo, c_hi + 1):
            if not smooth:
                vis = _pixel_vis(gauss, gauss[_X] - (col0 + col + 0.5), dy)
            alpha = min(ALPHA_MAX, gauss[_O] * vis)
            if smooth:
                vis *= ratio
                ratio *= gauss[_Q]
            p = r * TILE + col
            if done[p] or alpha < ALPHA_MIN:
                continue
            t_next = t[p] * (1.0 - alpha)
            if t_next <= T_MIN:
                done[p] = True
                finished += 1
                continue
            w = alpha * t[p]
            for ch in range(4):
                acc[p, ch] += w * gauss[_F0 + ch]
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
        behind = np.zeros((TILE * TILE, 4))
        start = tile_offsets[tile]
        for k in range(walked.max() - 1, -1, -1):
            gauss = prepared[gaussian_ids[start + k]]
            _backward_gaussian(gauss, k, row0, col0, n_rows, n_cols, pixels, t, walked,
                               behind, grad_isect[start + k])  # fmt: skip


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
def _backward_gaussian(gauss, k, row0, col0, n_rows, n_cols, pixels, t, walked, behind, grads):
    """Add tile-list entry ``k``'s gradients over its pixels to ``grads [12]``."""
    if gauss[_CUT] < 0.0:
        return
    smooth = gauss[_SMOOTH] != 0.0
    r_lo, r_hi = _row_range(gauss, row0, n_rows)
    # d/d means2d x, y; d/d conic a, b, c; d/d opacity; d/d f0..f3; |d/d means2d| x, y
    gx = gy = ga = gb = gc = go = g0 = g1 = g2 = g3 = ax = ay = 0.0
    for r in range(r_lo, r_hi + 1):
        dy = gauss[_Y] - (row0 + r + 0.5)
        c_lo, c_hi = _col_range(gauss, dy, col0, n_cols)
        if c_lo > c_hi:
            continue
        vis, ratio = (
            _row_start(gauss, gauss[_X] - (col0 + c_lo + 0.5), dy) if smooth else (0.0, 0.0)
        )
        for col in range(c_lo, c_hi + 1):
            dx = gauss[_X] - (col0 + col + 0.5)
            if not smooth:
                vis = _pixel_vis(gauss, dx, dy)
            pixel_vis = vis
            if smooth:
                vis *= ratio
                ratio *= gauss[_Q]
            p = r * TILE + col
            alpha = min(ALPHA_MAX, gauss[_O] * pixel_vis)
            if k >= walked[p] or alpha < ALPHA_MIN:
                continue
            # The standard 3DGS backward step, recovering T_i from the T after this Gaussian.
            inv_one_minus = 1.0 / (1.0 - alpha)
            t_i = t[p] * inv_one_minus
            t[p] = t_i
            w = alpha * t_i
            pixel = pixels[p]
            f0, f1, f2, f3 = gauss[_F0], gauss[_F0 + 1], gauss[_F0 + 2], gauss[_F0 + 3]
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
            if gauss[_O] * pixel_vis > ALPHA_MAX:
                continue  # alpha is clamped here: no gradient through sigma or opacity
            grad_sigma = -gauss[_O] * pixel_vis * grad_alpha
            px = grad_sigma * (gauss[_A] * dx + gauss[_B] * dy)
            py = grad_sigma * (gauss[_B] * dx + gauss[_C] * dy)
            gx += px
            gy += py
            ax += abs(px)
            ay += abs(py)
            ga += 0.5 * grad_sigma * dx * dx
            gb += grad_sigma * dx * dy
            gc += 0.5 * grad_sigma * dy * dy
            go += pixel_vis * grad_alpha
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
