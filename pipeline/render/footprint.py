"""Which pixels of a tile a Gaussian reaches, and its ``exp(-sigma)`` there (numba helpers).

A Gaussian only matters where ``sigma ≤ ln(255 · opacity)`` (its *cut-off ellipse*): outside,
its alpha is below 1/255 and the compositing contract skips it. :func:`tile_visits` lists, row
by row, the pixels of one tile inside that ellipse, each with ``vis = exp(-sigma)``, computed
without an ``exp`` per pixel: ``sigma`` is quadratic in the pixel position, so stepping one
pixel right (or down) multiplies ``vis`` by a ratio that itself changes by a constant factor
(``exp(-a)``, ``exp(-b)``, ``exp(-c)``). A row's first pixel is reached from the previous row's
first pixel the same way; three ``exp`` start the walk in each (Gaussian, tile) pair, and again
only if the products ever leave a safe range. The products drift from the exact values by a
few ulp per step (float64), far below any tolerance that matters.

Conics that are not positive definite, or too sharp for the products to stay in range (only
possible with ``eps2d < 0.05``), take a plain per-pixel path over the whole tile.

``prepared [N, PREPARED_COLUMNS]`` float64 holds each Gaussian's constants (see :func:`prepare`).
"""

# Numba infers these kernels' types; mypy need not.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["FEATURES", "PREPARED_COLUMNS", "TILE", "prepare", "tile_visits"]

TILE = 16
# Relative slack on the cut-off, so that the ellipse shortcut only ever drops pixels where the
# exact alpha test would drop the Gaussian too.
CUT_SLACK = 1e-6
# Row spans are widened by this many pixels for the same reason.
SPAN_SLACK = 1e-3
# Sharper conics (only reachable with eps2d < 0.05) take the per-pixel path.
MAX_SMOOTH_CONIC = 20.0
# The product walk restarts from exp() if a running value leaves [1/SAFE, SAFE].
SAFE = 1e200
FEATURES = 4  # r, g, b, camera depth
# Columns of ``prepared``.
X, Y, A, B, C, OPACITY, CUT, SMOOTH = 0, 1, 2, 3, 4, 5, 6, 7
F0 = 8  # features F0 .. F0 + 3
_QX, _QY, _QB, _INV_QX, _INV_QB, _INV_A, _DET, _HALF_H = 12, 13, 14, 15, 16, 17, 18, 19
PREPARED_COLUMNS = 20


@njit(parallel=True, cache=True, fastmath=False)
def prepare(means2d, conics, opacities, features):
    """Per-Gaussian constants ``[N, PREPARED_COLUMNS]`` float64 from float32/64 inputs."""
    n = means2d.shape[0]
    out = np.zeros((n, PREPARED_COLUMNS), dtype=np.float64)
    for g in prange(n):
        a, b, c = np.float64(conics[g, 0]), np.float64(conics[g, 1]), np.float64(conics[g, 2])
        opacity = np.float64(opacities[g])
        cut = math.log(opacity * 255.0) if opacity > 0.0 else -math.inf
        cut += CUT_SLACK * (1.0 + abs(cut))
        det = a * c - b * b
        smooth = 0.0 < a <= MAX_SMOOTH_CONIC and 0.0 < c <= MAX_SMOOTH_CONIC and det > 0.0
        out[g, X], out[g, Y] = means2d[g, 0], means2d[g, 1]
        out[g, A], out[g, B], out[g, C], out[g, OPACITY], out[g, CUT] = a, b, c, opacity, cut
        for ch in range(FEATURES):
            out[g, F0 + ch] = features[g, ch]
        if smooth and cut >= 0.0:
            out[g, SMOOTH] = 1.0
            out[g, _QX], out[g, _QY], out[g, _QB] = math.exp(-a), math.exp(-c), math.exp(-b)
            out[g, _INV_QX], out[g, _INV_QB] = math.exp(a), math.exp(b)
            out[g, _INV_A], out[g, _DET] = 1.0 / a, det
            # The ellipse sigma ≤ cut spans |dy| ≤ sqrt(2 cut Σ_yy), Σ_yy = a / det.
            out[g, _HALF_H] = math.sqrt(2.0 * cut * a / det)
    return out


@njit(cache=True, fastmath=False, inline="always")
def tile_visits(gauss, row0, col0, n_rows, n_cols, pixel_out, vis_out):
    """Fill ``pixel_out`` (tile-local ``row * 16 + col``) and ``vis_out`` for one Gaussian.

    Returns how many pixels were written, in row-major order; every pixel where the Gaussian's
    alpha can reach 1/255 is among them (and ``sigma ≥ 0`` at each of them).
    """
    if gauss[CUT] < 0.0:
        return 0
    if gauss[SMOOTH] == 0.0:
        return _visits_per_pixel(gauss, row0, col0, n_rows, n_cols, pixel_out, vis_out)
    return _visits_walked(gauss, row0, col0, n_rows, n_cols, pixel_out, vis_out)


@njit(cache=True, fastmath=False, inline="always")
def _visits_per_pixel(gauss, row0, col0, n_rows, n_cols, pixel_out, vis_out):
    n = 0
    for r in range(n_rows):
        dy = gauss[Y] - (row0 + r + 0.5)
        for col in range(n_cols):
            dx = gauss[X] - (col0 + col + 0.5)
            sigma = 0.5 * (gauss[A] * dx * dx + gauss[C] * dy * dy) + gauss[B] * dx * dy
            if 0.0 <= sigma <= gauss[CUT]:
                pixel_out[n] = r * TILE + col
                vis_out[n] = math.exp(-sigma)
                n += 1
    return n


@njit(cache=True, fastmath=False, inline="always")
def _visits_walked(gauss, row0, col0, n_rows, n_cols, pixel_out, vis_out):
    half = gauss[_HALF_H] + SPAN_SLACK
    r_lo = max(0, math.ceil(gauss[Y] - half - 0.5 - row0))
    r_hi = min(n_rows - 1, math.floor(gauss[Y] + half - 0.5 - row0))
    qx = gauss[_QX]  # a local: the stores below could alias ``gauss`` as far as LLVM knows
    n = 0
    anchored = False  # is (vis, h, v) valid at pixel (anchor_col, anchor_row)?
    anchor_row = anchor_col = 0
    vis = h = v = 0.0  # exp(-sigma) there and its ratios to the next pixel right / down
    for r in range(r_lo, r_hi + 1):
        c_lo, c_hi = _row_span(gauss, gauss[Y] - (row0 + r + 0.5), col0, n_cols)
        if c_lo > c_hi:
            continue
        if anchored:
            vis, h, v = _step(gauss, vis, h, v, r - anchor_row, c_lo - anchor_col)
            anchored = min(vis, h, v) > 1.0 / SAFE and max(vis, h, v) < SAFE
        if not anchored:
            vis, h, v = _exact(gauss, col0 + c_lo, row0 + r)
            anchored = True
        anchor_row, anchor_col = r, c_lo
        pixel_vis, ratio = vis, h
        for col in range(c_lo, c_hi + 1):
            pixel_out[n] = r * TILE + col
            vis_out[n] = pixel_vis
            n += 1
            pixel_vis *= ratio
            ratio *= qx
    return n


@njit(cache=True, fastmath=False, inline="always")
def _row_span(gauss, dy, col0, n_cols):
    """Tile-local columns ``[lo, hi]`` inside the cut-off ellipse on the row at offset ``dy``.

    ``0.5 a dx² + b dy dx + 0.5 c dy² ≤ cut`` for ``dx`` between the roots
    ``(-b dy ± sqrt(2 a cut - det dy²)) / a``; pixel centres are at ``x = mean_x - dx``.
    """
    disc = max(0.0, 2.0 * gauss[A] * gauss[CUT] - dy * dy * gauss[_DET])
    centre = gauss[X] + gauss[B] * dy * gauss[_INV_A]
    half = math.sqrt(disc) * gauss[_INV_A] + SPAN_SLACK
    lo = max(0, math.ceil(centre - half - 0.5 - col0))
    hi = min(n_cols - 1, math.floor(centre + half - 0.5 - col0))
    return lo, hi


@njit(cache=True, fastmath=False, inline="always")
def _exact(gauss, col, row):
    """``exp(-sigma)`` at pixel ``(col, row)`` and its ratios to the pixels right and below."""
    a, b, c = gauss[A], gauss[B], gauss[C]
    dx, dy = gauss[X] - (col + 0.5), gauss[Y] - (row + 0.5)
    vis = math.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))
    # sigma(dx - 1, dy) - sigma(dx, dy) = -a dx + a/2 - b dy, and likewise downwards.
    h = math.exp(a * dx - 0.5 * a + b * dy)
    v = math.exp(c * dy - 0.5 * c + b * dx)
    return vis, h, v


@njit(cache=True, fastmath=False, inline="always")
def _step(gauss, vis, h, v, down, right):
    """Move the walk ``down`` rows (≥ 0), then ``right`` columns (either sign)."""
    qx, qy, qb = gauss[_QX], gauss[_QY], gauss[_QB]
    for _ in range(down):
        vis *= v
        h *= qb
        v *= qy
    for _ in range(right):
        vis *= h
        h *= qx
        v *= qb
    if right < 0:
        inv_qx, inv_qb = gauss[_INV_QX], gauss[_INV_QB]
        for _ in range(-right):
            h *= inv_qx
            vis /= h
            v *= inv_qb
    return vis, h, v
