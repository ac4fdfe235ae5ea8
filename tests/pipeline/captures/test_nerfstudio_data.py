"""Reading nerfstudio's transforms.json back: the inverse of pipeline.nerfstudio's writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.captures.nerfstudio_data import read_nerfstudio_data
from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, Points3D
from pipeline.errors import InputError, UnsupportedCameraError
from pipeline.nerfstudio import nerfstudio_transforms, write_sparse_ply


def _random_model(rng: np.random.Generator, cameras: dict[int, ColmapCamera]) -> ColmapModel:
    images = {}
    for k in range(1, 7):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        images[k] = ColmapImage(k, q, rng.normal(size=3), 1 + (k % len(cameras)), f"f{k}.png")
    n = 50
    points = Points3D(
        ids=np.arange(1, n + 1, dtype=np.uint64),
        xyz=rng.normal(size=(n, 3)),
        rgb=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        error=np.zeros(n),
        track_offsets=np.zeros(n + 1, np.int64),
        track_image_ids=np.zeros(0, np.uint32),
        track_point2d_idx=np.zeros(0, np.uint32),
    )
    return ColmapModel(cameras, images, points)


def _write(model: ColmapModel, folder: Path) -> Path:
    data = nerfstudio_transforms(model, "images")
    write_sparse_ply(model, folder / "sparse_pc.ply")
    path = folder / "transforms.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poses_and_points_come_back_in_the_colmap_world(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cameras = {
        1: ColmapCamera(1, "PINHOLE", 640, 480, (500.0, 502.0, 321.0, 239.0)),
        2: ColmapCamera(2, "OPENCV", 480, 640, (400.0, 401.0, 240.0, 320.0, 0.1, -0.02, 1e-3, 0)),
    }
    model = _random_model(rng, cameras)
    ours = read_nerfstudio_data(_write(model, tmp_path))
    by_name = ours.images_by_name()
    for image in model.images.values():
        back = by_name[f"images/{image.name}"]
        np.testing.assert_allclose(back.world_to_camera(), image.world_to_camera(), atol=1e-9)
        camera = ours.cameras[back.camera_id]
        original = model.cameras[image.camera_id]
        assert (camera.model, camera.width, camera.height) == (
            original.model,
            original.width,
            original.height,
        )
        np.testing.assert_allclose(camera.params, original.params)
    # The ASCII PLY keeps 6 decimals.
    np.testing.assert_allclose(ours.points3d.xyz, model.points3d.xyz, atol=2e-6)
    np.testing.assert_array_equal(ours.points3d.rgb, model.points3d.rgb)


def test_without_points_the_model_has_none(tmp_path: Path) -> None:
    model = _random_model(
        np.random.default_rng(3), {1: ColmapCamera(1, "PINHOLE", 8, 6, (5, 5, 4, 3))}
    )
    path = _write(model, tmp_path)
    (tmp_path / "sparse_pc.ply").unlink()
    data = json.loads(path.read_text())
    del data["ply_file_path"]
    path.write_text(json.dumps(data))
    assert len(read_nerfstudio_data(path).points3d) == 0


def test_frames_without_size_take_it_from_the_image(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    identity = np.eye(4).tolist()
    data = {"fl_x": 10, "fl_y": 10, "cx": 10, "cy": 5, "frames": [
        {"file_path": "a.png", "transform_matrix": identity}
    ]}  # fmt: skip
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    camera = read_nerfstudio_data(tmp_path / "transforms.json").cameras[1]
    assert (camera.width, camera.height, camera.model) == (20, 10, "PINHOLE")


@pytest.mark.parametrize(
    ("data", "error", "detail"),
    [
        ({"frames": []}, InputError, "has no frames"),
        ({"frames": [{"transform_matrix": []}]}, InputError, "frame 1: no file_path"),
        ({"w": 4, "h": 4, "fl_x": 1, "fl_y": 1, "cx": 2, "cy": 2,
          "frames": [{"file_path": "a.png", "transform_matrix": [[1, 2]]}]},
         InputError, "frame 1: transform_matrix must be"),
        ({"camera_model": "EQUIRECTANGULAR",
          "frames": [{"file_path": "a.png", "transform_matrix": []}]},
         UnsupportedCameraError, "EQUIRECTANGULAR"),
        ({"w": 4, "h": 4, "fl_x": 1, "cx": 2, "cy": 2,
          "frames": [{"file_path": "a.png", "transform_matrix": []}]},
         InputError, "intrinsics lack fl_y"),
    ],
)  # fmt: skip
def test_bad_transforms_say_what_is_wrong(
    tmp_path: Path, data: dict[str, object], error: type[Exception], detail: str
) -> None:
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps(data))
    with pytest.raises(error, match=detail):
        read_nerfstudio_data(path)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "transforms.json"
    path.write_text('{\n"frames": [,]\n}')
    with pytest.raises(InputError, match=r"transforms\.json:2: not valid JSON"):
        read_nerfstudio_data(path)
