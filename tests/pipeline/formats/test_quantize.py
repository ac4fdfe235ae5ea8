"""1-D codebooks, k-means and Morton order against brute-force float64 references."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.formats.quantize import codebook_1d, kmeans, morton_order, nearest_centroids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_codebook_labels_are_the_nearest_entry(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(-5, 1, (3000, 3)), rng.normal(2, 0.1, (100, 3))])
    values = values.astype(np.float32)
    codebook, labels = codebook_1d(values)
    assert codebook.shape == (256,) and labels.shape == values.shape
    assert np.all(np.diff(codebook) >= 0)
    brute = np.abs(values.reshape(-1, 1).astype(np.float64) - codebook.astype(np.float64))
    ours = np.abs(values.reshape(-1).astype(np.float64) - codebook[labels.reshape(-1)])
    assert np.all(ours <= brute.min(axis=1) + 1e-6)


def test_codebook_keeps_few_distinct_values_exactly() -> None:
    values = np.array([[0.5, -1.0, 3.0], [3.0, 0.5, 0.5]], dtype=np.float32)
    codebook, labels = codebook_1d(values)
    assert np.array_equal(codebook[labels], values)
    constant = np.full((10, 3), 2.5, np.float32)
    codebook, labels = codebook_1d(constant)
    assert np.array_equal(codebook[labels], constant)


def test_codebook_error_is_small_for_dense_data() -> None:
    values = np.random.default_rng(3).uniform(-1, 1, 100_000).astype(np.float32)
    codebook, labels = codebook_1d(values)
    # 256 entries over a uniform range of 2: steps about 2/256, so errors under ~1/256.
    assert np.abs(codebook[labels] - values).max() < 1.5 / 256


def test_nearest_centroids_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    points = rng.normal(size=(5000, 45)).astype(np.float32)
    centroids = rng.normal(size=(300, 45)).astype(np.float32)
    labels, dist = nearest_centroids(points, centroids, chunk=700)
    d64 = ((points[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(
        -1
    )
    chosen = d64[np.arange(len(points)), labels]
    assert np.all(chosen <= d64.min(axis=1) * (1 + 1e-4) + 1e-4)
    assert np.allclose(dist, chosen, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("k", [64, 2048])
def test_kmeans_finds_well_separated_clusters(k: int) -> None:
    """Blobs far apart: every centroid near a blob, every point near its centroid (flat and
    two-level paths)."""
    rng = np.random.default_rng(5)
    centres = rng.uniform(-100, 100, (k, 6)).astype(np.float32)
    points = np.repeat(centres, 5, axis=0) + rng.normal(0, 0.01, (5 * k, 6)).astype(np.float32)
    centroids, labels = kmeans(points, k, iterations=10, fine_iterations=5)
    assert len(centroids) <= k and labels.max() < len(centroids)
    error = np.sqrt(((points - centroids[labels]) ** 2).sum(axis=1))
    spread = np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1)).mean()
    # Most points sit on their blob's centroid; k-means may merge a few blobs, never many.
    assert np.median(error) < 0.1 and error.mean() < 0.05 * spread


def test_kmeans_with_fewer_points_than_clusters_is_exact() -> None:
    points = np.random.default_rng(6).normal(size=(10, 3)).astype(np.float32)
    centroids, labels = kmeans(points, 64)
    assert np.array_equal(centroids[labels], points)


def _morton_reference(cells: np.ndarray) -> list[int]:
    codes = []
    for x, y, z in cells.tolist():
        code = 0
        for bit in range(21):
            code |= ((x >> bit) & 1) << (3 * bit)
            code |= ((y >> bit) & 1) << (3 * bit + 1)
            code |= ((z >> bit) & 1) << (3 * bit + 2)
        codes.append(code)
    return codes


def test_morton_order_matches_bit_interleaving() -> None:
    rng = np.random.default_rng(7)
    positions = rng.uniform(-3, 5, (500, 3))
    low, high = positions.min(axis=0), positions.max(axis=0)
    cells = np.clip((positions - low) / (high - low) * (1 << 21), 0, (1 << 21) - 1).astype(int)
    expected = np.argsort(_morton_reference(cells), kind="stable")
    assert np.array_equal(morton_order(positions.astype(np.float32)), expected)
