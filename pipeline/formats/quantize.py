"""Vectorised quantisers shared by the compressed formats: 1-D codebooks, k-means, Morton order.

Everything is numpy (float32 data, float64 accumulation where sums are long); no per-element
Python loop. Results are deterministic for a given input (fixed random seeds).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from pipeline.formats.arrays import F32

__all__ = ["codebook_1d", "kmeans", "morton_order", "nearest_centroids"]

_HIST_BINS = 4096
_CODEBOOK_SAMPLE = 1 << 20
_DENSITY_EXPONENT = 0.5  # bin weight = count**0.5: sparse tails still pull centroids


def codebook_1d(values: F32, k: int = 256, iterations: int = 30) -> tuple[F32, NDArray[np.uint8]]:
    """A ``k``-entry codebook for all of ``values`` (finite, any shape) and each value's entry.

    1-D k-means (Lloyd) on a histogram: bin edges halfway between uniform and quantile
    positions, bin weights ``count**0.5`` so that sparse tails (large scales, saturated
    colours) keep entries of their own. Every value is then labelled with its **nearest**
    entry, so ``|v - codebook[label]|`` is at most half the gap to the next entry.

    Returns:
        ``(codebook [k] float32 ascending, labels uint8 of values' shape)``.
    """
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        return np.zeros(k, np.float32), np.zeros(np.shape(values), np.uint8)
    points, weights = _weighted_bins(flat)
    fits = len(points) <= k
    centroids = points if fits else _weighted_lloyd(points, weights, k, iterations)
    codebook = np.full(k, centroids[-1], dtype=np.float32)
    codebook[: len(centroids)] = np.sort(centroids).astype(np.float32)
    labels = nearest_sorted(codebook, flat).astype(np.uint8)
    return codebook, labels.reshape(np.shape(values))


def nearest_sorted(codebook: F32, values: F32) -> NDArray[np.intp]:
    """Index of the nearest entry of an ascending ``codebook`` for each of ``values``.

    Ties (a value exactly halfway) go to the upper entry; repeated entries resolve to the first.
    """
    c = codebook.astype(np.float64)
    midpoints = (c[:-1] + c[1:]) * 0.5
    index = np.searchsorted(midpoints, values.astype(np.float64), side="right")
    # Padding repeats the last centroid: point to its first copy.
    first = np.searchsorted(c, c, side="left")
    nearest: NDArray[np.intp] = first[index]
    return nearest


def _weighted_bins(flat: F32) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Histogram of ``flat``: ``(bin means, bin weights)`` of the non-empty bins."""
    if flat.size > _CODEBOOK_SAMPLE:
        rng = np.random.default_rng(0)
        flat = flat[rng.choice(flat.size, _CODEBOOK_SAMPLE, replace=False)]
    data = np.sort(flat.astype(np.float64))
    if data[0] == data[-1]:
        return data[:1], np.ones(1)
    quantile_edges = data[np.linspace(0, data.size - 1, _HIST_BINS + 1).astype(np.intp)]
    uniform_edges = np.linspace(data[0], data[-1], _HIST_BINS + 1)
    edges = 0.5 * (quantile_edges + uniform_edges)
    starts = np.searchsorted(data, edges[:-1], side="left")
    starts[0] = 0
    ends = np.append(starts[1:], data.size)
    counts = ends - starts
    sums = np.concatenate([[0.0], np.cumsum(data)])
    keep = counts > 0
    means = (sums[ends] - sums[starts])[keep] / counts[keep]
    return means, counts[keep].astype(np.float64) ** _DENSITY_EXPONENT


def _weighted_lloyd(
    points: NDArray[np.float64], weights: NDArray[np.float64], k: int, iterations: int
) -> NDArray[np.float64]:
    """Weighted 1-D k-means of sorted ``points``; starts at the weighted quantiles."""
    cumulative = np.cumsum(weights)
    targets = (np.arange(k) + 0.5) / k * cumulative[-1]
    centroids = points[np.minimum(np.searchsorted(cumulative, targets), len(points) - 1)]
    centroids = np.unique(centroids)
    for _ in range(iterations):
        labels = np.searchsorted((centroids[:-1] + centroids[1:]) * 0.5, points)
        mass = np.bincount(labels, weights, minlength=len(centroids))
        moment = np.bincount(labels, weights * points, minlength=len(centroids))
        used = mass > 0
        updated = np.where(used, moment / np.where(used, mass, 1.0), centroids)
        if np.array_equal(updated, centroids):
            break
        centroids = np.sort(updated)
    # Spend entries merged away (duplicates) on the widest remaining gaps.
    centroids = np.unique(centroids)
    while len(centroids) < k and len(centroids) < len(points):
        gaps = np.diff(centroids)
        if gaps.size == 0 or gaps.max() <= 0:
            break
        i = int(np.argmax(gaps))
        centroids = np.insert(centroids, i + 1, 0.5 * (centroids[i] + centroids[i + 1]))
    result: NDArray[np.float64] = centroids
    return result


def nearest_centroids(
    points: F32, centroids: F32, chunk: int = 16384
) -> tuple[NDArray[np.int64], F32]:
    """Index of the nearest centroid (squared Euclidean) for each point, and that distance².

    Chunked float32 ``‖c‖² − 2 x·c`` (one matrix product per chunk), so memory stays at
    ``chunk × k`` floats.
    """
    c_norm = np.einsum("kd,kd->k", centroids, centroids)
    minus_2ct = np.ascontiguousarray(centroids.T * np.float32(-2.0))
    labels = np.empty(len(points), dtype=np.int64)
    best = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        scores = block @ minus_2ct
        scores += c_norm
        index = np.argmin(scores, axis=1)
        labels[start : start + chunk] = index
        x_norm = np.einsum("nd,nd->n", block, block)
        best[start : start + chunk] = np.maximum(scores[np.arange(len(block)), index] + x_norm, 0.0)
    return labels, best


def kmeans(
    points: F32,
    k: int,
    iterations: int = 10,
    fine_iterations: int = 3,
    seed: int = 0,
    sample: int = 64,
) -> tuple[F32, NDArray[np.int64]]:
    """Cluster ``points`` ``[N, D]`` into at most ``k`` centroids; returns ``(centroids, labels)``.

    Large ``k`` is split in two levels: about ``√k`` coarse clusters (``iterations`` of Lloyd on
    ``sample × √k`` random points, then one full assignment), then each coarse cluster is split
    into a share of ``k`` proportional to its size, by ``fine_iterations`` of Lloyd on its own
    points and a last assignment. So the cost is ``O(N · √k · D)`` per iteration
    instead of ``O(N · k · D)``: seconds, not minutes, for a million 45-dimensional SH vectors
    and ``k = 65536``. Labels index the returned centroids (``len(centroids) ≤ k``).
    """
    data = np.ascontiguousarray(points, dtype=np.float32)
    n = len(data)
    if n <= k:
        return data.copy(), np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if k <= 1024:
        return _flat_kmeans(data, k, iterations, rng, sample)
    coarse_k = 1 << math.ceil(math.log2(math.isqrt(k)))
    coarse, coarse_labels = _flat_kmeans(data, coarse_k, iterations, rng, sample)
    order = np.argsort(coarse_labels, kind="stable")
    sizes = np.bincount(coarse_labels, minlength=len(coarse))
    shares = _proportional_shares(sizes, k)
    centroids: list[F32] = []
    labels = np.empty(n, dtype=np.int64)
    start = offset = 0
    for size, share in zip(sizes.tolist(), shares.tolist(), strict=True):
        members = order[start : start + size]
        start += size
        if size == 0:
            continue
        local, local_labels = _flat_kmeans(data[members], share, fine_iterations, rng, 0)
        labels[members] = local_labels + offset
        centroids.append(local)
        offset += len(local)
    return np.concatenate(centroids), labels


def _proportional_shares(sizes: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """Split ``k`` over clusters by size (largest remainder), each non-empty one ≥ 1."""
    exact = sizes / sizes.sum() * k
    shares = np.floor(exact).astype(np.int64)
    shares[(sizes > 0) & (shares == 0)] = 1
    shares = np.minimum(shares, sizes)
    spare = k - int(shares.sum())
    if spare > 0:
        room = np.where(shares < sizes, exact - shares, -np.inf)
        for i in np.argsort(-room)[:spare]:
            if np.isfinite(room[i]):
                shares[i] += 1
    result: NDArray[np.int64] = shares
    return result


def _flat_kmeans(
    data: F32, k: int, iterations: int, rng: np.random.Generator, sample: int
) -> tuple[F32, NDArray[np.int64]]:
    """Lloyd's k-means; with ``sample`` > 0 it starts from k-means++ seeds and iterates on
    ``sample × k`` random points, then one final pass assigns every point (else it starts from
    random points). Empty clusters are re-seeded from the farthest points."""
    n = len(data)
    if n <= k:
        return data.copy(), np.arange(n, dtype=np.int64)
    train = data
    if sample and n > sample * k:
        train = data[rng.choice(n, sample * k, replace=False)]
    if sample:
        centroids = _plus_plus_seeds(train, k, rng)
    else:
        centroids = train[rng.choice(len(train), k, replace=False)].copy()
    for _ in range(iterations):
        labels, dist = nearest_centroids(train, centroids)
        counts = np.bincount(labels, minlength=k)
        sums = _cluster_sums(labels, train, k)
        empty = counts == 0
        centroids = np.where(
            empty[:, None], centroids, sums / np.maximum(counts, 1)[:, None]
        ).astype(np.float32)
        if empty.any():
            farthest = np.argsort(dist)[::-1][: int(empty.sum())]
            centroids[empty] = train[farthest]
    labels, _ = nearest_centroids(data, centroids)
    return centroids, labels


def _plus_plus_seeds(train: F32, k: int, rng: np.random.Generator) -> F32:
    """k-means++ seeding: each next seed drawn with probability ∝ squared distance."""
    seeds = np.empty((k, train.shape[1]), dtype=np.float32)
    seeds[0] = train[rng.integers(len(train))]
    closest = ((train - seeds[0]) ** 2).sum(axis=1, dtype=np.float64)
    for i in range(1, k):
        total = closest.sum()
        pick = rng.choice(len(train), p=closest / total) if total > 0 else rng.integers(len(train))
        seeds[i] = train[pick]
        np.minimum(closest, ((train - seeds[i]) ** 2).sum(axis=1, dtype=np.float64), out=closest)
    return seeds


def _cluster_sums(labels: NDArray[np.int64], rows: F32, k: int) -> NDArray[np.float64]:
    """``[k, D]`` float64: the sum of the rows of each cluster (sort once, sum the runs)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sums = np.zeros((k, rows.shape[1]), dtype=np.float64)
    sums[sorted_labels[starts]] = np.add.reduceat(rows[order], starts, axis=0, dtype=np.float64)
    return sums


def morton_order(positions: F32) -> NDArray[np.intp]:
    """Indices sorting ``positions`` ``[N, 3]`` along a Z-order curve (21 bits per axis).

    Coordinates are scaled to the bounding box; non-finite ones count as its minimum. Stable,
    so equal codes keep their input order.
    """
    p = np.nan_to_num(np.asarray(positions, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if len(p) == 0:
        return np.zeros(0, dtype=np.intp)
    low, high = p.min(axis=0), p.max(axis=0)
    extent = np.where(high > low, high - low, 1.0)
    cells = np.clip((p - low) / extent * (1 << 21), 0, (1 << 21) - 1).astype(np.uint64)
    code = (_spread_bits(cells[:, 2]) << np.uint64(2)) | (_spread_bits(cells[:, 1]) << np.uint64(1))
    code |= _spread_bits(cells[:, 0])
    return np.argsort(code, kind="stable")


def _spread_bits(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Insert two zero bits between each of the low 21 bits of ``v``."""
    v = v & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):  # fmt: skip
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v
