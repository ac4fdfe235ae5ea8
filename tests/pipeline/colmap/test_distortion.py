"""Lens models: forward projection against a scalar oracle, and the numerical inverse."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.colmap import ColmapCamera
from pipeline.colmap.distortion import (
    UNDISTORTABLE_MODELS,
    check_supported,
    is_distorted,
    project,
    unproject,
)
from pipeline.errors import UnsupportedCameraError
from tests.pipeline.colmap.lens_reference import reference_pixel

# Mild but clearly non-zero lens coefficients for each model.
LENSES = {
    "SIMPLE_PINHOLE": (410.0, 321.0, 239.0),
    "PINHOLE": (410.0, 405.0, 321.0, 239.0),
    "SIMPLE_RADIAL": (410.0, 321.0, 239.0, -0.08),
    "RADIAL": (410.0, 321.0, 239.0, -0.08, 0.02),
    "OPENCV": (410.0, 405.0, 321.0, 239.0, -0.08, 0.02, 0.002, -0.003),
    "FULL_OPENCV": (
        410.0,
        405.0,
        321.0,
        239.0,
        -0.08,
        0.02,
        0.002,
        -0.003,
        0.01,
        0.05,
        -0.01,
        0.002,
    ),
    "OPENCV_FISHEYE": (410.0, 405.0, 321.0, 239.0, 0.05, -0.02, 0.004, -0.001),
    "SIMPLE_RADIAL_FISHEYE": (410.0, 321.0, 239.0, 0.05),
    "RADIAL_FISHEYE": (410.0, 321.0, 239.0, 0.05, -0.02),
    "SIMPLE_FISHEYE": (410.0, 321.0, 239.0),
    "FISHEYE": (410.0, 405.0, 321.0, 239.0),
}


def camera(model: str) -> ColmapCamera:
    return ColmapCamera(1, model, 640, 480, LENSES[model])  # type: ignore[arg-type]


def test_every_undistortable_model_has_a_lens_case() -> None:
    assert set(LENSES) == set(UNDISTORTABLE_MODELS)


@pytest.mark.parametrize("model", sorted(LENSES))
def test_projection_matches_the_scalar_oracle(model: str) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-0.8, 0.8, (2, 200))
    u, v = project(camera(model), x, y)
    expected = np.array(
        [reference_pixel(model, LENSES[model], a, b) for a, b in zip(x, y, strict=True)]
    )
    np.testing.assert_allclose(np.stack([u, v], axis=-1), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("model", sorted(LENSES))
def test_unproject_inverts_project(model: str) -> None:
    rng = np.random.default_rng(1)
    u, v = rng.uniform(0, 640, 300), rng.uniform(0, 480, 300)
    x, y = unproject(camera(model), u, v)
    assert np.isfinite(x).all() and np.isfinite(y).all()
    u2, v2 = project(camera(model), x, y)
    np.testing.assert_allclose(u2, u, atol=1e-8)
    np.testing.assert_allclose(v2, v, atol=1e-8)


def test_points_outside_the_lens_range_come_back_as_nan() -> None:
    folding = ColmapCamera(1, "SIMPLE_RADIAL", 640, 480, (410.0, 320.0, 240.0, -2.0))
    x, _ = unproject(folding, np.array([0.0, 320.0]), np.array([0.0, 240.0]))
    assert np.isnan(x[0]) and x[1] == pytest.approx(0.0)


def test_distortion_flags() -> None:
    assert not is_distorted(camera("PINHOLE")) and not is_distorted(camera("SIMPLE_PINHOLE"))
    assert is_distorted(camera("OPENCV")) and is_distorted(camera("SIMPLE_FISHEYE"))
    no_lens = ColmapCamera(1, "OPENCV", 640, 480, (400.0, 400.0, 320.0, 240.0, 0, 0, 0, 0))
    assert not is_distorted(no_lens)


@pytest.mark.parametrize(
    "model",
    [
        "FOV",
        "THIN_PRISM_FISHEYE",
        "RAD_TAN_THIN_PRISM_FISHEYE",
        "SIMPLE_DIVISION",
        "DIVISION",
        "EUCM",
        "EQUIRECTANGULAR",
    ],
)
def test_unsupported_models_are_rejected_by_name(model: str) -> None:
    from pipeline.colmap import model_by_name

    params = tuple(100.0 for _ in model_by_name(model).params)
    with pytest.raises(UnsupportedCameraError) as info:
        check_supported(ColmapCamera(3, model, 640, 480, params))  # type: ignore[arg-type]
    assert str(info.value).startswith(
        f"camera 3 uses the {model} model, which this pipeline cannot undistort (supported: "
    )
