"""Frame rotations: proper matrices, quaternions that agree with matrices, whole-splat rotation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pipeline.export.rotate import (
    COLMAP_TO_NERFSTUDIO,
    COLMAP_TO_OUTPUT,
    NERFSTUDIO_TO_OUTPUT,
    as_rotation,
    axis_rotation,
    matrix_to_quat,
    quat_multiply,
    quat_to_matrix,
    rotate_quats,
    rotate_splats,
)
from tests.support.splats import random_splats


@pytest.mark.parametrize("R", [COLMAP_TO_NERFSTUDIO, NERFSTUDIO_TO_OUTPUT, COLMAP_TO_OUTPUT])
def test_frame_matrices_are_proper_rotations(R: np.ndarray) -> None:
    assert np.allclose(R @ R.T, np.eye(3), atol=0)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-15)


def test_frame_matrices_are_the_reference_ones() -> None:
    # nerfstudio's applied_transform is Rx(-90°); the net output frame is Rz(-90°) of COLMAP.
    assert np.array_equal(COLMAP_TO_NERFSTUDIO, axis_rotation("x", -90))
    assert np.array_equal(COLMAP_TO_OUTPUT, axis_rotation("z", -90))
    # rotate_ply.py: x' = -z, y' = -x, z' = y, quaternion (0.5, 0.5, -0.5, -0.5).
    p = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(NERFSTUDIO_TO_OUTPUT @ p, [-3.0, -1.0, 2.0])
    assert np.allclose(matrix_to_quat(NERFSTUDIO_TO_OUTPUT), [0.5, 0.5, -0.5, -0.5])
    assert np.allclose(matrix_to_quat(COLMAP_TO_OUTPUT), [2**-0.5, 0, 0, -(2**-0.5)])


def test_axis_rotation_matches_scipy() -> None:
    for axis in "xyz":
        for degrees in (-90.0, 30.0, 123.0):
            expected = Rotation.from_euler(axis, degrees, degrees=True).as_matrix()
            assert np.allclose(axis_rotation(axis, degrees), expected, atol=1e-14)


def test_as_rotation_rejects_non_rotations() -> None:
    with pytest.raises(ValueError, match="determinant -1"):
        as_rotation(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="not orthonormal"):
        as_rotation(np.eye(3) * 2)
    with pytest.raises(ValueError, match="3x3"):
        as_rotation(np.eye(4))


def _random_rotations(n: int, seed: int) -> list[np.ndarray]:
    rotations = list(Rotation.random(n, random_state=seed).as_matrix())
    # Near-180° turns (trace ≈ -1) are where naive matrix→quaternion formulas break.
    rotations += [axis_rotation(a, 180.0) for a in "xyz"]
    rotations.append(Rotation.from_rotvec([np.pi - 1e-9, 0.3, 0.0]).as_matrix())
    return rotations


def test_matrix_to_quat_round_trips_and_matches_scipy_up_to_sign() -> None:
    for R in _random_rotations(50, seed=1):
        q = matrix_to_quat(R)
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-12)
        assert np.allclose(quat_to_matrix(q), R, atol=1e-9)
        x, y, z, w = Rotation.from_matrix(R).as_quat()
        ref = np.array([w, x, y, z])
        assert min(np.abs(q - ref).max(), np.abs(q + ref).max()) < 1e-8


def test_quat_multiply_composes_like_matrices() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(20, 4, generator=g, dtype=torch.float64)
    b = torch.randn(20, 4, generator=g, dtype=torch.float64)
    product = quat_multiply(a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True))
    expected = quat_to_matrix(a.numpy()) @ quat_to_matrix(b.numpy())
    assert np.allclose(quat_to_matrix(product.numpy()), expected, atol=1e-12)


def test_rotated_quaternions_equal_rotated_matrices_up_to_sign() -> None:
    quats = torch.randn(200, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for R in _random_rotations(10, seed=4):
        out = rotate_quats(quats, R).numpy()
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
        assert np.allclose(quat_to_matrix(out), R @ quat_to_matrix(quats.numpy()), atol=1e-12)
        # SciPy's composition (what rotate_ply.py does): equal up to sign.
        xyzw = (
            Rotation.from_matrix(R) * Rotation.from_quat(quats.numpy()[:, [1, 2, 3, 0]])
        ).as_quat()
        ref = xyzw[:, [3, 0, 1, 2]]
        same = np.minimum(np.abs(out - ref).max(axis=1), np.abs(out + ref).max(axis=1))
        assert same.max() < 1e-12


def test_zero_quaternion_becomes_identity() -> None:
    quats = torch.zeros(1, 4, dtype=torch.float64)
    out = rotate_quats(quats, COLMAP_TO_OUTPUT)
    assert np.allclose(quat_to_matrix(out.numpy())[0], COLMAP_TO_OUTPUT)


def test_rotate_splats_moves_geometry_and_keeps_scalars() -> None:
    splats = random_splats(100, seed=5)
    R = Rotation.random(random_state=6).as_matrix()
    out = rotate_splats(splats, R)
    expected = splats.means.double().numpy() @ R.T
    assert out.means.dtype == torch.float32
    assert np.allclose(out.means.numpy(), expected, atol=1e-6)
    assert torch.equal(out.log_scales, splats.log_scales)
    assert torch.equal(out.logit_opacities, splats.logit_opacities)
    assert torch.equal(out.sh[:, 0], splats.sh[:, 0])  # DC is rotation-invariant
    assert not torch.allclose(out.sh[:, 1:], splats.sh[:, 1:])  # bands 1-3 are not


def test_colmap_to_output_composition_is_rz_minus_90() -> None:
    """Conformance: nerfstudio's swap followed by rotate_ply.py = Rz(-90°) of COLMAP values."""
    splats = random_splats(100, seed=7)
    via_nerfstudio = rotate_splats(
        rotate_splats(splats, COLMAP_TO_NERFSTUDIO), NERFSTUDIO_TO_OUTPUT
    )
    x, y, z = splats.means.unbind(-1)
    assert torch.equal(via_nerfstudio.means, torch.stack([y, -x, z], dim=-1))
    rz = axis_rotation("z", -90)
    expected = rz @ quat_to_matrix(splats.quats.double().numpy())
    assert np.allclose(quat_to_matrix(via_nerfstudio.quats.double().numpy()), expected, atol=1e-6)


def test_permutation_rotations_are_exact_in_float32() -> None:
    splats = random_splats(50, seed=8)
    out = rotate_splats(splats, COLMAP_TO_NERFSTUDIO)
    x, y, z = splats.means.unbind(-1)
    assert torch.equal(out.means, torch.stack([x, z, -y], dim=-1))
