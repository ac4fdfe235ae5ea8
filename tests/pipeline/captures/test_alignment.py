"""Similarity alignment and pose errors against known transforms (float64, random inputs)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.captures.alignment import align_similarity, pose_errors


def _random_similarity(rng: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray]:
    rotation = Rotation.random(random_state=rng).as_matrix()
    return float(rng.uniform(0.1, 10)), rotation, rng.normal(size=3) * 5


@pytest.mark.parametrize("seed", range(5))
def test_recovers_a_known_similarity_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale, rotation, shift = _random_similarity(rng)
    source = rng.normal(size=(20, 3))
    target = source @ (scale * rotation).T + shift
    s, r, t = align_similarity(source, target)
    assert s == pytest.approx(scale, rel=1e-10)
    np.testing.assert_allclose(r, rotation, atol=1e-10)
    np.testing.assert_allclose(t, shift, atol=1e-9)


def test_least_squares_beats_perturbed_transforms() -> None:
    rng = np.random.default_rng(7)
    source = rng.normal(size=(30, 3))
    target = (
        source @ Rotation.random(random_state=rng).as_matrix().T * 2
        + rng.normal(size=(30, 3)) * 0.1
    )
    s, r, t = align_similarity(source, target)

    def cost(s_: float, r_: np.ndarray, t_: np.ndarray) -> float:
        return float(((target - (source @ (s_ * r_).T + t_)) ** 2).sum())

    best = cost(s, r, t)
    for _ in range(50):
        nudge = Rotation.from_rotvec(rng.normal(size=3) * 1e-3).as_matrix()
        assert cost(s * (1 + rng.normal() * 1e-3), nudge @ r, t + rng.normal(size=3) * 1e-3) >= best


def _poses(rng: np.random.Generator, n: int) -> np.ndarray:
    poses = np.tile(np.eye(4), (n, 1, 1))
    for pose in poses:
        pose[:3, :3] = Rotation.random(random_state=rng).as_matrix()
        pose[:3, 3] = rng.normal(size=3) * 3
    return poses


def test_pose_errors_are_zero_for_a_transformed_copy() -> None:
    rng = np.random.default_rng(3)
    true = _poses(rng, 10)
    scale, rotation, shift = _random_similarity(rng)
    # Recovered world = inverse similarity of the true world: x_r = R^T (x_t - shift) / scale.
    world_t_from_r = np.eye(4)
    world_t_from_r[:3, :3], world_t_from_r[:3, 3] = scale * rotation, shift
    recovered = np.stack([p @ world_t_from_r for p in true])
    recovered[:, :3, :] /= np.linalg.norm(recovered[:, 0, :3], axis=1)[:, None, None]  # unit rows
    errors = pose_errors(recovered, true)
    assert errors.scale == pytest.approx(scale, rel=1e-9)
    np.testing.assert_allclose(errors.rotation_deg, 0, atol=1e-5)
    np.testing.assert_allclose(errors.position, 0, atol=1e-8)


def test_pose_errors_report_a_known_tilt() -> None:
    rng = np.random.default_rng(4)
    true = _poses(rng, 8)
    recovered = true.copy()
    tilt = Rotation.from_rotvec([0, 0, np.radians(3.0)]).as_matrix()
    recovered[2, :3, :3] = tilt @ true[2, :3, :3]
    recovered[2, :3, 3] = tilt @ true[2, :3, 3]  # same centre, turned camera
    errors = pose_errors(recovered, true)
    assert errors.rotation_deg[2] == pytest.approx(3.0, abs=1e-5)
    np.testing.assert_allclose(np.delete(errors.rotation_deg, 2), 0, atol=1e-5)  # arccos near 1
