"""Robust subject bounds: floaters must not blow the box up, the box follows the up vector."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.preview.bounds import BoundsConfig, robust_bounds, scene_axes


def _subject(n: int, seed: int) -> np.ndarray:
    """Centres filling a 2 × 1 × 0.5 box around (10, -3, 2)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 3)) * [1.0, 0.5, 0.25] + [10.0, -3.0, 2.0]


def _floaters(n: int, seed: int) -> np.ndarray:
    """Centres scattered in every direction 50..500 units away."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * rng.uniform(50, 500, (n, 1))


def test_clean_subject_gets_a_tight_box() -> None:
    points = _subject(20_000, seed=0)
    bounds = robust_bounds(points, np.full(len(points), 0.9), up=[0, 0, 1])
    assert np.allclose(bounds.center, [10.0, -3.0, 2.0], atol=0.05)
    assert np.allclose(bounds.half_extents, [0.96, 0.48, 0.24], atol=0.03)  # 2-98 % of ±1
    assert np.array_equal(bounds.axes, np.eye(3))


def test_floaters_do_not_shrink_the_subject_to_a_dot() -> None:
    subject, floaters = _subject(10_000, seed=1), _floaters(1_500, seed=2)  # 13 % floaters
    points = np.concatenate([subject, floaters])
    opacities = np.concatenate([np.full(10_000, 0.9), np.full(1_500, 0.05)])
    bounds = robust_bounds(points, opacities, up=[0, 0, 1])
    assert bounds.size < 2.5  # the subject's longest side is 2
    assert np.allclose(bounds.center, [10.0, -3.0, 2.0], atol=0.2)
    # The reference's raw min/max box would be hundreds of units across,
    naive = points.max(axis=0) - points.min(axis=0)
    assert naive.max() > 400
    # and so would an unweighted percentile box with this many floaters.
    unweighted = robust_bounds(points, opacities, [0, 0, 1], BoundsConfig(opacity_weighted=False))
    assert unweighted.size > 20


def test_box_is_aligned_with_a_tilted_up_vector() -> None:
    up = np.array([0.0, 1.0, 1.0]) / np.sqrt(2)
    axes = scene_axes(up)
    rng = np.random.default_rng(3)
    local = rng.uniform(-1, 1, (5_000, 3)) * [1.0, 2.0, 0.5]
    points = local @ axes + [1.0, 2.0, 3.0]
    bounds = robust_bounds(points, np.ones(len(points)), up)
    assert np.allclose(bounds.up, up)
    assert np.allclose(bounds.half_extents, [0.96, 1.92, 0.48], atol=0.05)
    assert np.allclose(bounds.center, [1.0, 2.0, 3.0], atol=0.05)


@pytest.mark.parametrize("up", [[0, 0, 1], [0, -1, 0], [1, 0, 0], [0.3, -0.2, 0.9]])
def test_scene_axes_are_a_right_handed_frame_around_up(up: list[float]) -> None:
    axes = scene_axes(up)
    assert np.allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    assert np.allclose(np.cross(axes[0], axes[1]), axes[2], atol=1e-12)
    assert np.allclose(axes[2], np.asarray(up) / np.linalg.norm(up))


def test_weighted_percentiles_match_repetition_brute_force() -> None:
    rng = np.random.default_rng(4)
    points = rng.normal(size=(300, 3))
    counts = rng.integers(1, 5, 300)
    bounds = robust_bounds(points, counts.astype(float), [0, 0, 1], BoundsConfig(10.0, 90.0))
    repeated = np.repeat(points, counts, axis=0)
    low = np.percentile(repeated, 10.0, axis=0, method="inverted_cdf")
    high = np.percentile(repeated, 90.0, axis=0, method="inverted_cdf")
    assert np.allclose(bounds.center, (low + high) / 2)
    assert np.allclose(bounds.half_extents, (high - low) / 2)


def test_single_gaussian_gets_the_minimum_size_and_corners() -> None:
    bounds = robust_bounds([[1.0, 2.0, 3.0]], [0.5], [0, 0, 1], BoundsConfig(min_size=0.2))
    assert np.allclose(bounds.half_extents, 0.1)
    corners = bounds.corners()
    assert corners.shape == (8, 3)
    assert np.allclose(corners.min(axis=0), [0.9, 1.9, 2.9])
    assert bounds.radius == pytest.approx(0.1 * np.sqrt(3))


def test_non_finite_centres_and_weights_are_ignored() -> None:
    points = np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0], [1.0, 1.0, 1.0]])
    bounds = robust_bounds(points, [np.inf, 1.0, np.nan], [0, 0, 1], BoundsConfig(0.0, 100.0))
    assert np.allclose(bounds.center, [0.5, 0.5, 0.5])  # zero weights fall back to uniform
    with pytest.raises(ValueError, match="no Gaussian has a finite position"):
        robust_bounds(np.full((2, 3), np.nan), [1.0, 1.0], [0, 0, 1])


def test_invalid_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="percentiles must satisfy"):
        BoundsConfig(low_percentile=60.0, high_percentile=40.0)
    with pytest.raises(ValueError, match="up must be a finite, non-zero 3-vector"):
        scene_axes([0.0, 0.0, 0.0])
