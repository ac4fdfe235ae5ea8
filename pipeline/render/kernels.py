"""Every numba kernel of the CPU tile rasterizer: footprints, tile binning, compositing.

They live in one module on purpose: numba's on-disk cache (``cache=True``) is keyed on the
source file of the function it compiled, so a kernel that inlined a helper from another module
would keep stale machine code after a change to that module alone.

**Footprints.** A Gaussian only matters where ``sigma ≤ ln(255 · opacity)`` (its *cut-off
ellipse*): outside, its alpha is below 1/255 and the compositing contract skips it.
:func:`tile_segments` lists, row by row, the runs of pixels of one tile inside that ellipse,
with ``vis = exp(-sigma)`` at each run's start and a ratio that gives the rest without an
``exp`` per pixel: ``sigma`` is quadratic in the pixel position, so stepping one pixel right (or
down) multiplies ``vis`` by a ratio that itself changes by a constant factor (``exp(-a)``,
``exp(-b)``, ``exp(-c)``). A row's first pixel is reached from the previous row's first pixel the
same way; three ``exp`` start the walk in each (Gaussian, tile) pair, and again only if the
products ever leave a safe range. The products drift from the exact values by a few ulp per
step (float64), far below any tolerance that matters. Conics too sharp for the products to
stay in range (only possible with ``eps2d < 0.05``) take an ``exp`` per pixel inside the
ellipse; conics that are not positive definite (no ellipse) one per pixel of the whole tile.

**Binning.** :func:`list_tiles` finds, per Gaussian, the tiles whose rectangle of pixel centres
meets its cut-off ellipse (per row of tiles, the ellipse's x-extent in the row's band is a
contiguous run of tiles, :func:`band_x_range`), into slots sized by the ellipse's bounding box
(:func:`box_tile_counts`); :func:`group_by_tile` is a stable counting sort that drops the unused
slots and keeps each tile's list in depth order.

**Compositing.** The rules are exactly those of :mod:`pipeline.render.dense` (gsplat's
``rasterize_to_pixels``). One parallel iteration handles one 16×16 tile; the tile's Gaussians
are visited in list order (nearest first) over their segments, and every pixel keeps its own
transmittance and stops at ``T ≤ 1e-4``. The backward pass walks each pixel's list back to
front from where the pixel stopped, recovering ``T_i`` from ``T_final`` by division (the
standard 3DGS backward pass). Arithmetic is float64 whatever the storage type (scalar float64
costs the same as float32 on a CPU), which keeps the float32 path close to the float64
reference.

Array conventions (``N`` Gaussians, ``I`` tile intersections, ``H × W`` pixels):

- ``prepared [N, PREPARED_COLUMNS]`` float64 from :func:`prepare`: each Gaussian's constants.
- ``gaussian_ids [I]``, ``tile_offsets [T + 1]``: a :class:`~pipeline.render.tiles.TileBins`.
- ``features_out [H, W, 4]``: ``Σ w_i f_i``; ``transmittance [H, W]``: ``T_final``;
  ``n_stop [H, W]`` int32: where the pixel stopped in its tile's list, i.e. the position of
  the Gaussian at which ``T ≤ 1e-4`` ended it, else the list's length; the backward pass
  considers the entries before it (those with alpha below 1/255 it skips, as the forward did).
"""

# Numba infers these kernels' types; mypy need not.
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "CUT",
    "FEATURES",
    "GRAD_COLUMNS",
    "PREPARED_COLUMNS",
    "TILE",
    "box_tile_counts",
    "composite_backward",
    "composite_forward",
    "group_by_tile",
    "list_tiles",
    "prepare",
    "sum_per_gaussian",
]

TILE = 16
# Relative slack on the cut-off, so that the ellipse shortcut only ever drops pixels where the
# exact alpha test would drop the Gaussian too.
CUT_SLACK = 1e-6
# Row spans are widened by this many pixels for the same reason.
SPAN_SLACK = 1e-3
# Sharper conics (only reachable with eps2d < 0.05) take an exp per pixel instead of the walk.
MAX_WALK_CONIC = 20.0
# The product walk restarts from exp() if a running value leaves [1/SAFE, SAFE].
SAFE = 1e200
FEATURES = 4  # r, g, b, camera depth
# Columns of ``prepared``.
X, Y, A, B, C, OPACITY, CUT = 0, 1, 2, 3, 4, 5, 6
ELLIPSE = 7  # 1: positive-definite conic and opacity ≥ 1/255 (the cut-off ellipse exists)
F0 = 8  # features F0 .. F0 + 3
_QX, _QY, _QB, _INV_QX, _INV_QB, _INV_A, _DET = 12, 13, 14, 15, 16, 17, 18
HALF_W, HALF_H, DY_AT_LEFT = 19, 20, 21  # the cut-off ellipse's half extents; see prepare
_WALK = 22  # 1: the exp-free walk applies (conic entries ≤ MAX_WALK_CONIC)
PREPARED_COLUMNS = 23


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
        out[g, X], out[g, Y] = means2d[g, 0], means2d[g, 1]
        out[g, A], out[g, B], out[g, C], out[g, OPACITY], out[g, CUT] = a, b, c, opacity, cut
        for ch in range(FEATURES):
            out[g, F0 + ch] = features[g, ch]
        if not (a > 0.0 and c > 0.0 and det > 0.0 and cut >= 0.0):
            continue
        out[g, ELLIPSE] = 1.0
        out[g, _INV_A], out[g, _DET] = 1.0 / a, det
        # The ellipse sigma ≤ cut spans |dx| ≤ sqrt(2 cut Σ_xx) and |dy| ≤ sqrt(2 cut Σ_yy),
        # with the 2D covariance Σ = conic⁻¹ = [[c, -b], [-b, a]] / det; its leftmost point
        # (largest dx = mean_x - x) sits at dy = (Σ_xy / Σ_xx) dx = -(b / c) dx.
        half_w = math.sqrt(2.0 * cut * c / det)
        out[g, HALF_W], out[g, HALF_H] = half_w, math.sqrt(2.0 * cut * a / det)
        out[g, DY_AT_LEFT] = -b / c * half_w
        if a <= MAX_WALK_CONIC and c <= MAX_WALK_CONIC:
            out[g, _WALK] = 1.0
            out[g, _QX], out[g, _QY], out[g, _QB] = math.exp(-a), math.exp(-c), math.exp(-b)
            out[g, _INV_QX], out[g, _INV_QB] = math.exp(a), math.exp(b)
    return out


@njit(cache=True, fastmath=False, inline="always")
def tile_segments(gauss, row0, col0, n_rows, n_cols, segments):
    """Row segments of the tile that one Gaussian reaches; returns how many were written.

    ``segments [256, 4]`` receives, per segment: the tile-local index ``row * 16 + col`` of
    its first pixel, its length in pixels, ``exp(-sigma)`` at its first pixel and the ratio of
    the next pixel's value to it. Along a segment ``vis *= ratio; ratio *= q_x`` gives the
    following pixels (``q_x`` from :func:`row_factor`). Segments come in row-major order;
    every pixel where the Gaussian's alpha can reach 1/255 is in one (with ``sigma ≥ 0``).
    """
    if gauss[CUT] < 0.0:
        return 0
    if gauss[ELLIPSE] == 0.0:
        return _segments_per_pixel(gauss, row0, col0, n_rows, n_cols, segments)
    return _segments_in_ellipse(gauss, row0, col0, n_rows, n_cols, segments)


@njit(cache=True, fastmath=False, inline="always")
def row_factor(gauss):
    """``q_x = exp(-a)``: how a segment's pixel-to-pixel ratio changes per step right."""
    return gauss[_QX]


@njit(cache=True, fastmath=False, inline="always")
def _segments_per_pixel(gauss, row0, col0, n_rows, n_cols, segments):
    """One single-pixel segment per tile pixel with ``0 ≤ sigma ≤ cut`` (exp at each)."""
    n = 0
    for r in range(n_rows):
        n = _pixels_of_row(gauss, row0, col0, r, 0, n_cols - 1, segments, n)
    return n


@njit(cache=True, fastmath=False, inline="always")
def _pixels_of_row(gauss, row0, col0, r, c_lo, c_hi, segments, n):
    """Append single-pixel segments for columns ``c_lo..c_hi`` of row ``r`` where
    ``0 ≤ sigma ≤ cut``, each with its own ``exp``; returns the new segment count."""
    dy = gauss[Y] - (row0 + r + 0.5)
    for col in range(c_lo, c_hi + 1):
        dx = gauss[X] - (col0 + col + 0.5)
        sigma = 0.5 * (gauss[A] * dx * dx + gauss[C] * dy * dy) + gauss[B] * dx * dy
        if 0.0 <= sigma <= gauss[CUT]:
            segments[n, 0] = r * TILE + col
            segments[n, 1] = 1.0
            segments[n, 2] = math.exp(-sigma)
            segments[n, 3] = 1.0
            n += 1
    return n


@njit(cache=True, fastmath=False, inline="always")
def _segments_in_ellipse(gauss, row0, col0, n_rows, n_cols, segments):
    """Segments of the rows' spans inside the cut-off ellipse, walked without exp if allowed."""
    half = gauss[HALF_H] + SPAN_SLACK
    r_lo = max(0, math.ceil(gauss[Y] - half - 0.5 - row0))
    r_hi = min(n_rows - 1, math.floor(gauss[Y] + half - 0.5 - row0))
    n = 0
    anchored = False  # is (vis, h, v) valid at pixel (anchor_col, anchor_row)?
    anchor_row = anchor_col = 0
    vis = h = v = 0.0  # exp(-sigma) there and its ratios to the next pixel right / down
    for r in range(r_lo, r_hi + 1):
        c_lo, c_hi = _row_span(gauss, gauss[Y] - (row0 + r + 0.5), col0, n_cols)
        if c_lo > c_hi:
            continue
        if gauss[_WALK] == 0.0:
            n = _pixels_of_row(gauss, row0, col0, r, c_lo, c_hi, segments, n)
            continue
        if anchored:
            vis, h, v = _step(gauss, vis, h, v, r - anchor_row, c_lo - anchor_col)
            anchored = min(vis, h, v) > 1.0 / SAFE and max(vis, h, v) < SAFE
        if not anchored:
            vis, h, v = _exact(gauss, col0 + c_lo, row0 + r)
            anchored = True
        anchor_row, anchor_col = r, c_lo
        segments[n, 0] = r * TILE + c_lo
        segments[n, 1] = c_hi - c_lo + 1
        segments[n, 2] = vis
        segments[n, 3] = h
        n += 1
    return n


@njit(cache=True, fastmath=False, inline="always")
def _row_span(gauss, dy, col0, n_cols):
    """Tile-local columns ``[lo, hi]`` inside the cut-off ellipse on the row at offset ``dy``."""
    left, right = _edges(gauss, dy)
    lo = max(0, math.ceil(left - SPAN_SLACK - 0.5 - col0))
    hi = min(n_cols - 1, math.floor(right + SPAN_SLACK - 0.5 - col0))
    return lo, hi


@njit(cache=True, fastmath=False, inline="always")
def band_x_range(gauss, y_lo, y_hi):
    """Pixel-x extent ``(left, right)`` of the cut-off ellipse within rows ``y ∈ [y_lo, y_hi]``.

    Only where the ellipse exists (``gauss[ELLIPSE] == 1``); ``left > right`` when the band misses
    the ellipse. The ellipse is convex, so its left edge is a convex function of ``y``: the
    minimum over the band is at an end of the band, or at the ellipse's leftmost point when
    that lies inside (likewise on the right).
    """
    dy_lo = max(gauss[Y] - y_hi, -gauss[HALF_H])  # dy = mean_y - y
    dy_hi = min(gauss[Y] - y_lo, gauss[HALF_H])
    if dy_lo > dy_hi:
        return 1.0, 0.0
    left_lo, right_lo = _edges(gauss, dy_lo)
    left_hi, right_hi = _edges(gauss, dy_hi)
    left, right = min(left_lo, left_hi), max(right_lo, right_hi)
    if dy_lo <= gauss[DY_AT_LEFT] <= dy_hi:
        left = gauss[X] - gauss[HALF_W]
    if dy_lo <= -gauss[DY_AT_LEFT] <= dy_hi:
        right = gauss[X] + gauss[HALF_W]
    return left - SPAN_SLACK, right + SPAN_SLACK


@njit(cache=True, fastmath=False, inline="always")
def _edges(gauss, dy):
    """Pixel x of the cut-off ellipse's left and right edges on the row at offset ``dy``.

    ``0.5 a dx² + b dy dx + 0.5 c dy² ≤ cut`` for ``dx`` between the roots
    ``(-b dy ± sqrt(2 a cut - det dy²)) / a``, and pixel ``x = mean_x - dx``.
    """
    disc = max(0.0, 2.0 * gauss[A] * gauss[CUT] - dy * dy * gauss[_DET])
    centre = gauss[X] + gauss[B] * dy * gauss[_INV_A]
    half = math.sqrt(disc) * gauss[_INV_A]
    return centre - half, centre + half


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


# Binning.


@njit(parallel=True, cache=True, fastmath=False)
def box_tile_counts(prepared, ids, width, tiles_x, tiles_y, counts):
    """``counts[i]``: tiles in candidate ``i``'s cut-off box, a cheap bound on its tile count."""
    for i in prange(ids.shape[0]):
        gauss = prepared[ids[i]]
        ty0, ty1 = _tile_rows(gauss, tiles_y)
        tx0, tx1 = _tile_cols(gauss, width, tiles_x)
        counts[i] = max(0, ty1 - ty0 + 1) * max(0, tx1 - tx0 + 1)


@njit(parallel=True, cache=True, fastmath=False)
def list_tiles(prepared, ids, width, height, tiles_x, tiles_y, starts, out):
    """Write candidate ``i``'s tiles from ``out[starts[i]]``, then -1 up to ``starts[i + 1]``."""
    for i in prange(ids.shape[0]):
        gauss = prepared[ids[i]]
        n = starts[i]
        ty0, ty1 = _tile_rows(gauss, tiles_y)
        box0, box1 = _tile_cols(gauss, width, tiles_x)
        for ty in range(ty0, ty1 + 1):
            tx0, tx1 = _tile_run(gauss, ty, width, height, tiles_x)
            # Never outside the box the slots were counted for, whatever the rounding.
            for tx in range(max(tx0, box0), min(tx1, box1) + 1):
                out[n] = ty * tiles_x + tx
                n += 1
        out[n : starts[i + 1]] = -1


@njit(cache=True, fastmath=False, inline="always")
def _tile_cols(gauss, width, tiles_x):
    """Tile columns ``[tx0, tx1]`` within reach of the cut-off ellipse (all if none)."""
    if gauss[ELLIPSE] == 0.0:
        return 0, tiles_x - 1
    half = gauss[HALF_W] + SPAN_SLACK
    return _tile_cover(gauss[X] - half, gauss[X] + half, float(width), tiles_x)


@njit(cache=True, fastmath=False, inline="always")
def _tile_cover(lo, hi, size, tiles):
    """Tiles whose pixel centres ``[16 t + 0.5, 16 t + 15.5]`` meet ``[lo, hi]`` (clipped)."""
    lo = min(max(lo, 0.0), size)  # clamp first: infinities must not reach int conversion
    hi = min(max(hi, 0.0), size)
    first = math.ceil((lo - (TILE - 0.5)) / TILE)
    last = math.floor((hi - 0.5) / TILE)
    return max(first, 0), min(last, tiles - 1)


@njit(cache=True, fastmath=False, inline="always")
def _tile_rows(gauss, tiles_y):
    """Tile rows ``[ty0, ty1]`` within reach of the cut-off ellipse (all rows if none)."""
    if gauss[ELLIPSE] == 0.0:
        return 0, tiles_y - 1
    half = gauss[HALF_H] + SPAN_SLACK
    return _tile_cover(gauss[Y] - half, gauss[Y] + half, float(TILE * tiles_y), tiles_y)


@njit(cache=True, fastmath=False, inline="always")
def _tile_run(gauss, ty, width, height, tiles_x):
    """Tiles ``[tx0, tx1]`` of tile row ``ty`` that meet the cut-off ellipse."""
    if gauss[ELLIPSE] == 0.0:
        return 0, tiles_x - 1
    y_lo = ty * TILE + 0.5
    y_hi = min((ty + 1) * TILE, height) - 0.5
    left, right = band_x_range(gauss, y_lo, y_hi)
    if left > right:
        return 1, 0
    return _tile_cover(left, right, float(width), tiles_x)


@njit(cache=True, fastmath=False)
def group_by_tile(pair_tiles, ids, starts, n_tiles):
    """Stable counting sort of the (tile, Gaussian) pairs by tile (tiles < 0 are padding)."""
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    for t in pair_tiles:
        if t >= 0:
            offsets[t + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    cursor = offsets[:-1].copy()
    grouped = np.empty(offsets[n_tiles], dtype=np.int64)
    for i in range(ids.shape[0]):
        for j in range(starts[i], starts[i + 1]):
            t = pair_tiles[j]
            if t >= 0:
                grouped[cursor[t]] = ids[i]
                cursor[t] += 1
    return grouped, offsets


# Compositing.

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
# Per-pixel state of the backward kernel: a flat table, this many entries per pixel.
_PIXEL_COLUMNS = 8
# Columns of the backward kernel's per-intersection gradients.
GRAD_COLUMNS = 12  # means2d x, y; conic a, b, c; opacity; features 0..3; |means2d| x, y


@njit(parallel=True, cache=True, fastmath=False)
def composite_forward(
    prepared, gaussian_ids, tile_offsets, tiles_x, features_out, transmittance, n_stop
):
    """Front-to-back compositing of every tile; fills the three output arrays."""
    height, width = transmittance.shape
    for tile in prange(tile_offsets.shape[0] - 1):
        row0, col0 = (tile // tiles_x) * TILE, (tile % tiles_x) * TILE
        n_rows, n_cols = min(TILE, height - row0), min(TILE, width - col0)
        start, end = tile_offsets[tile], tile_offsets[tile + 1]
        t = np.ones(TILE * TILE)
        acc = np.zeros((TILE * TILE, FEATURES))
        # Where each pixel stopped in the list: the whole list unless T_MIN ended it earlier.
        stop = np.full(TILE * TILE, end - start, dtype=np.int64)
        segments = np.empty((TILE * TILE, 4))
        live = n_rows * n_cols
        for k in range(end - start):
            gauss = prepared[gaussian_ids[start + k]]
            n = tile_segments(gauss, row0, col0, n_rows, n_cols, segments)
            live -= _composite_one(gauss, k, segments, n, t, acc, stop)
            if live == 0:
                break
        for r in range(n_rows):
            for col in range(n_cols):
                p = r * TILE + col
                for ch in range(FEATURES):
                    features_out[row0 + r, col0 + col, ch] = acc[p, ch]
                transmittance[row0 + r, col0 + col] = t[p]
                n_stop[row0 + r, col0 + col] = stop[p]


@njit(cache=True, fastmath=False, inline="always")
def _composite_one(gauss, k, segments, n, t, acc, stop):
    """Composite tile-list entry ``k`` over its segments; returns how many pixels ended."""
    finished = 0
    opacity, q_x = gauss[OPACITY], row_factor(gauss)
    f0, f1, f2, f3 = gauss[F0], gauss[F0 + 1], gauss[F0 + 2], gauss[F0 + 3]
    for s in range(n):
        p, vis, ratio = int(segments[s, 0]), segments[s, 2], segments[s, 3]
        for _ in range(int(segments[s, 1])):
            alpha = min(ALPHA_MAX, opacity * vis)
            vis *= ratio
            ratio *= q_x
            p += 1
            if stop[p - 1] <= k or alpha < ALPHA_MIN:
                continue
            t_next = t[p - 1] * (1.0 - alpha)
            if t_next <= T_MIN:
                stop[p - 1] = k  # this Gaussian and all behind it are dropped
                finished += 1
                continue
            w = alpha * t[p - 1]
            acc[p - 1, 0] += w * f0
            acc[p - 1, 1] += w * f1
            acc[p - 1, 2] += w * f2
            acc[p - 1, 3] += w * f3
            t[p - 1] = t_next
    return finished


@njit(parallel=True, cache=True, fastmath=False)
def composite_backward(
    prepared,
    gaussian_ids,
    tile_offsets,
    tiles_x,
    transmittance,
    n_stop,
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
        pixels = _load_pixels(row0, col0, n_rows, n_cols, transmittance, n_stop,
                              grad_features, grad_alpha)  # fmt: skip
        t = pixels[0::_PIXEL_COLUMNS].copy()
        stop = pixels[6::_PIXEL_COLUMNS].astype(np.int64)
        behind = np.zeros(TILE * TILE * FEATURES)  # Σ_{j behind} w_j f_j, flat per pixel
        segments = np.empty((TILE * TILE, 4))
        start = tile_offsets[tile]
        for k in range(stop.max() - 1, -1, -1):
            gauss = prepared[gaussian_ids[start + k]]
            n = tile_segments(gauss, row0, col0, n_rows, n_cols, segments)
            _backward_one(gauss, k, row0, col0, segments, n, pixels, t, stop, behind,
                          grad_isect[start + k])  # fmt: skip


@njit(cache=True, fastmath=False, inline="always")
def _load_pixels(row0, col0, n_rows, n_cols, transmittance, n_stop, grad_features, grad_alpha):
    """Flat per-pixel table, ``_PIXEL_COLUMNS`` per pixel: T_final, grad f0..f3,
    T_final · grad alpha (the alpha term's numerator), stop, unused."""
    pixels = np.zeros(TILE * TILE * _PIXEL_COLUMNS)
    for r in range(n_rows):
        for col in range(n_cols):
            q = (r * TILE + col) * _PIXEL_COLUMNS
            pixels[q] = transmittance[row0 + r, col0 + col]
            for ch in range(FEATURES):
                pixels[q + 1 + ch] = grad_features[row0 + r, col0 + col, ch]
            pixels[q + 5] = grad_alpha[row0 + r, col0 + col] * pixels[q]
            pixels[q + 6] = n_stop[row0 + r, col0 + col]
    return pixels


@njit(cache=True, fastmath=False, inline="always")
def _backward_one(gauss, k, row0, col0, segments, n, pixels, t, stop, behind, grads):
    """Add tile-list entry ``k``'s gradients over its segments to ``grads [12]``."""
    opacity, a, b, c, q_x = gauss[OPACITY], gauss[A], gauss[B], gauss[C], row_factor(gauss)
    f0, f1, f2, f3 = gauss[F0], gauss[F0 + 1], gauss[F0 + 2], gauss[F0 + 3]
    # d/d means2d x, y; d/d conic a, b, c; d/d opacity; d/d f0..f3; |d/d means2d| x, y
    gx = gy = ga = gb = gc = go = g0 = g1 = g2 = g3 = ax = ay = 0.0
    for s in range(n):
        p, next_vis, ratio = int(segments[s, 0]), segments[s, 2], segments[s, 3]
        dy = gauss[Y] - (row0 + p // TILE + 0.5)
        dx = gauss[X] - (col0 + p % TILE + 0.5) + 1.0  # one pixel left of the first
        p -= 1
        for _ in range(int(segments[s, 1])):
            vis = next_vis
            next_vis *= ratio
            ratio *= q_x
            p += 1
            dx -= 1.0
            alpha = min(ALPHA_MAX, opacity * vis)
            if k >= stop[p] or alpha < ALPHA_MIN:
                continue
            inv_one_minus = 1.0 / (1.0 - alpha)
            t_i = t[p] * inv_one_minus  # the transmittance in front of this Gaussian
            t[p] = t_i
            w = alpha * t_i
            # Flat per-pixel tables (see composite_backward), indexed directly.
            q, e = p * _PIXEL_COLUMNS, p * FEATURES
            u0, u1, u2, u3 = pixels[q + 1], pixels[q + 2], pixels[q + 3], pixels[q + 4]
            g0 += w * u0
            g1 += w * u1
            g2 += w * u2
            g3 += w * u3
            grad_alpha = (
                (f0 * t_i - behind[e] * inv_one_minus) * u0
                + (f1 * t_i - behind[e + 1] * inv_one_minus) * u1
                + (f2 * t_i - behind[e + 2] * inv_one_minus) * u2
                + (f3 * t_i - behind[e + 3] * inv_one_minus) * u3
                + pixels[q + 5] * inv_one_minus
            )
            behind[e] += w * f0
            behind[e + 1] += w * f1
            behind[e + 2] += w * f2
            behind[e + 3] += w * f3
            if opacity * vis > ALPHA_MAX:
                continue  # alpha is clamped here: no gradient through sigma or opacity
            grad_sigma = -opacity * vis * grad_alpha
            px = grad_sigma * (a * dx + b * dy)
            py = grad_sigma * (b * dx + c * dy)
            gx += px
            gy += py
            ax += abs(px)
            ay += abs(py)
            ga += 0.5 * grad_sigma * dx * dx
            gb += grad_sigma * dx * dy
            gc += 0.5 * grad_sigma * dy * dy
            go += vis * grad_alpha
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
