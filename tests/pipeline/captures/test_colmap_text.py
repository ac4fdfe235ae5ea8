"""COLMAP text models: exact round trips, pycolmap cross-checks, malformed lines (file:line)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pipeline.colmap import (
    read_any_model,
    read_model,
    read_text_model,
    write_model,
    write_text_model,
)
from pipeline.errors import ColmapTextError, InputError
from tests.pipeline.colmap.factories import random_model
from tests.pipeline.colmap.test_roundtrip import assert_models_equal

HAS_PYCOLMAP = importlib.util.find_spec("pycolmap") is not None
needs_pycolmap = pytest.mark.skipif(not HAS_PYCOLMAP, reason="pycolmap (extra 'sfm') missing")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_round_trip_is_exact(tmp_path: Path, seed: int) -> None:
    model = random_model(seed, with_rigs=False)
    write_text_model(model, tmp_path)
    assert_models_equal(model, read_text_model(tmp_path))


def test_read_any_model_prefers_binary_and_falls_back_to_text(tmp_path: Path) -> None:
    binary, text = random_model(3, with_rigs=False), random_model(4, with_rigs=False)
    write_text_model(text, tmp_path)
    assert_models_equal(text, read_any_model(tmp_path))
    write_model(binary, tmp_path)
    assert_models_equal(binary, read_any_model(tmp_path))


@needs_pycolmap
def test_pycolmap_reads_the_text_we_write(tmp_path: Path) -> None:
    import pycolmap

    model = random_model(5, with_rigs=False)
    # COLMAP's own reader ends a name at the first space (ours keeps the rest of the line).
    for image in model.images.values():
        image.name = image.name.replace(" ", "_")
    write_text_model(model, tmp_path)
    reconstruction = pycolmap.Reconstruction(str(tmp_path))
    for image_id, image in model.images.items():
        theirs = reconstruction.images[image_id]
        assert theirs.name == image.name
        np.testing.assert_allclose(
            theirs.cam_from_world().matrix(), image.world_to_camera()[:3], atol=1e-12
        )
    for row in range(len(model.points3d)):
        point = reconstruction.points3D[int(model.points3d.ids[row])]
        np.testing.assert_array_equal(point.xyz, model.points3d.xyz[row])


@needs_pycolmap
def test_we_read_the_text_pycolmap_writes(tmp_path: Path) -> None:
    import pycolmap

    model = random_model(6, with_rigs=False)
    write_model(model, tmp_path / "bin")
    reconstruction = pycolmap.Reconstruction(str(tmp_path / "bin"))
    (tmp_path / "txt").mkdir()
    reconstruction.write_text(str(tmp_path / "txt"))
    ours = read_text_model(tmp_path / "txt")
    reference = read_model(tmp_path / "bin")
    assert ours.cameras.keys() == reference.cameras.keys()
    for camera_id, camera in reference.cameras.items():
        assert ours.cameras[camera_id].model == camera.model
        np.testing.assert_allclose(ours.cameras[camera_id].params, camera.params, rtol=1e-12)
    for image_id, image in reference.images.items():
        np.testing.assert_allclose(
            ours.images[image_id].world_to_camera(), image.world_to_camera(), atol=1e-9
        )
        assert ours.images[image_id].name == image.name
    np.testing.assert_allclose(
        np.sort(ours.points3d.xyz, axis=0), np.sort(reference.points3d.xyz, axis=0), rtol=1e-9
    )


def _with_line(tmp_path: Path, file: str, line: int, text: str) -> Path:
    """The text model of a small random model, with line ``line`` of ``file`` replaced."""
    model = random_model(7, num_images=3, num_points=5, with_rigs=False)
    model = dataclasses.replace(model, cameras=dict(list(model.cameras.items())[:1]))
    first = next(iter(model.cameras))
    model.images = {k: dataclasses.replace(v, camera_id=first) for k, v in model.images.items()}
    write_text_model(model, tmp_path)
    path = tmp_path / file
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("file", "line", "text", "detail"),
    [
        ("cameras.txt", 2, "1 PINHOLE 640 480 500 500 320", "PINHOLE takes 4 params, got 3"),
        ("cameras.txt", 2, "1 NOT_A_MODEL 640 480 1 2 3", "unknown camera model"),
        ("cameras.txt", 2, "1 PINHOLE 640 x 1 2 3 4", "ids"),
        ("cameras.txt", 2, "1 PINHOLE 640 480 nan 500 320 240", "must be finite"),
        ("images.txt", 3, "1 1 0 0 0 0 0 0", "expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID"),
        ("images.txt", 3, "1 0 0 0 0 0 0 0 1 a.jpg", "quaternion is zero"),
        ("images.txt", 4, "10.0 20.0", "not X Y POINT3D_ID triples"),
        ("points3D.txt", 2, "1 0 0 0 300 0 0 0.5", "colour must be 0..255"),
        ("points3D.txt", 2, "1 0 0 0 1 2 3 0.5 7", "IMAGE_ID POINT2D_IDX pairs"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, file: str, line: int, text: str, detail: str
) -> None:
    path = _with_line(tmp_path, file, line, text)
    with pytest.raises(ColmapTextError, match=detail) as caught:
        read_text_model(tmp_path)
    assert f"{path}:{line}:" in str(caught.value)
    assert caught.value.line == line


def test_missing_text_file_is_named(tmp_path: Path) -> None:
    write_text_model(random_model(8, with_rigs=False), tmp_path)
    (tmp_path / "points3D.txt").unlink()
    with pytest.raises(InputError, match=r"points3D\.txt"):
        read_text_model(tmp_path)
