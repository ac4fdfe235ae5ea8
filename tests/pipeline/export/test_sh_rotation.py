"""SH rotation: the colour seen along a rotated direction equals the colour seen before."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pipeline.export.rotate import COLMAP_TO_OUTPUT, rotate_splats
from pipeline.export.sh_rotation import rotate_sh, sh_band_rotation, sh_rotation_matrix
from pipeline.render.dense import render_dense
from pipeline.render.sh import eval_sh
from pipeline.render.types import Camera, RenderSettings
from tests.pipeline.render.factories import look_at_camera
from tests.support.splats import random_splats

_C1 = 0.4886025119029199


def _random_dirs(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_rotated_sh_shows_the_same_colour_along_rotated_directions(degree: int) -> None:
    k = (degree + 1) ** 2
    sh = torch.randn(64, k, 3, generator=torch.Generator().manual_seed(degree), dtype=torch.float64)
    dirs = _random_dirs(64, seed=10 + degree)
    for R in Rotation.random(5, random_state=degree).as_matrix():
        rotated = rotate_sh(sh, R)
        before = eval_sh(degree, sh, dirs)
        after = eval_sh(degree, rotated, dirs @ torch.as_tensor(R).T)
        assert torch.allclose(before, after, atol=1e-12)


def test_band_one_matches_the_hand_derived_vector_rotation() -> None:
    # Band 1 is C1·v·d with v = (-c2, -c0, c1) for coefficients (c0, c1, c2) in the basis
    # (-C1 y, C1 z, -C1 x); rotating the world turns v into R v.
    R = Rotation.random(random_state=3).as_matrix()
    c = np.array([0.3, -1.2, 0.7])
    v = np.array([-c[2], -c[0], c[1]])
    w = R @ v
    expected = np.array([-w[1], w[2], -w[0]])
    assert np.allclose(sh_band_rotation(R, 1) @ c, expected, atol=1e-13)


def test_band_matrices_are_orthogonal_and_compose() -> None:
    R1, R2 = Rotation.random(2, random_state=4).as_matrix()
    for band in range(4):
        X1, X2 = sh_band_rotation(R1, band), sh_band_rotation(R2, band)
        assert np.allclose(X1 @ X1.T, np.eye(2 * band + 1), atol=1e-12)
        assert np.allclose(sh_band_rotation(R1 @ R2, band), X1 @ X2, atol=1e-12)
        assert np.allclose(sh_band_rotation(np.eye(3), band), np.eye(2 * band + 1), atol=1e-12)


def test_full_matrix_is_block_diagonal_with_fixed_dc() -> None:
    X = sh_rotation_matrix(COLMAP_TO_OUTPUT, 3)
    assert X.shape == (16, 16)
    assert X[0, 0] == pytest.approx(1.0)
    for band in range(4):
        lo, hi = band * band, (band + 1) ** 2
        outside = np.delete(X[lo:hi], np.s_[lo:hi], axis=1)
        assert np.abs(outside).max() == 0.0


def test_rotate_sh_rejects_a_non_square_coefficient_count() -> None:
    with pytest.raises(ValueError, match="not a square"):
        rotate_sh(torch.zeros(2, 5, 3), np.eye(3))


def _rotated_camera(camera: Camera, R: np.ndarray) -> Camera:
    """The same camera after the world turned by ``R``: ``w2c' = w2c · R⁻¹``."""
    turn = torch.eye(4, dtype=torch.float64)
    turn[:3, :3] = torch.as_tensor(R).T
    return Camera(camera.world_to_camera @ turn, camera.K, camera.width, camera.height)


def test_rendered_image_is_unchanged_when_scene_and_camera_rotate_together() -> None:
    splats = random_splats(40, sh_degree=3, seed=11, dtype=torch.float64)
    splats.sh[:, 1:] *= 3.0  # strong view dependence, so a wrong rotation shows
    camera = look_at_camera((0.4, -0.5, -3.0), width=40, height=30)
    R = Rotation.random(random_state=12).as_matrix()
    settings = RenderSettings(sh_degree=3)
    before = render_dense(splats.activated(), camera, settings).rgb
    rotated_camera = _rotated_camera(camera, R)
    after = render_dense(rotate_splats(splats, R).activated(), rotated_camera, settings).rgb
    assert torch.allclose(before, after, atol=1e-9)
    # Without SH rotation (the reference's splat_rot.ply) the colours are wrong.
    stale = rotate_splats(splats, R, rotate_sh_bands=False)
    wrong = render_dense(stale.activated(), rotated_camera, settings).rgb
    assert (wrong - before).abs().max() > 0.05
    assert math.isfinite(float(after.sum()))
