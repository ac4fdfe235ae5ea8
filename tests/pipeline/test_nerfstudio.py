"""nerfstudio export: poses against an independent float64 computation, layout, point cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from plyfile import PlyData
from scipy.spatial.transform import Rotation

from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, Points3D
from pipeline.errors import UnsupportedCameraError
from pipeline.export.rotate import matrix_to_quat, rotate_splats
from pipeline.frames import extract_frames
from pipeline.nerfstudio import (
    APPLIED_TRANSFORM,
    camera_intrinsics_entry,
    nerfstudio_c2w,
    write_nerfstudio_data,
)
from pipeline.render.dense import render_dense
from pipeline.render.types import Camera, RenderSettings
from pipeline.scene_frame import frame_from_model
from pipeline.synthetic import SyntheticScene
from tests.pipeline.colmap.factories import random_unit_quaternion
from tests.pipeline.render.factories import look_at_camera
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.support.splats import random_splats

Exported = tuple[SyntheticScene, dict[str, Any]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("job")
    scene = make_tiny_job(root, unregistered_every=4)
    extract_frames(root)
    path = write_nerfstudio_data(root)
    return scene, json.loads(path.read_text())


def expected_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """Independent: scipy rotation, camera centre, OpenCV→OpenGL axes, then the world turn."""
    R = Rotation.from_quat([qvec[1], qvec[2], qvec[3], qvec[0]]).as_matrix()  # x, y, z, w
    centre = -R.T @ tvec
    axes_gl = R.T @ np.diag([1.0, -1.0, -1.0])  # columns: camera x, y, z (OpenGL) in world
    world = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # (x, y, z) -> (x, z, -y)
    c2w = np.eye(4)
    c2w[:3, :3] = world @ axes_gl
    c2w[:3, 3] = world @ centre
    return c2w


def test_pose_conversion_matches_an_independent_computation() -> None:
    rng = np.random.default_rng(8)
    for _ in range(100):
        qvec, tvec = random_unit_quaternion(rng), rng.normal(size=3) * 5
        image = ColmapImage(1, qvec, tvec, 1, "a.jpg")
        np.testing.assert_allclose(nerfstudio_c2w(image), expected_c2w(qvec, tvec), atol=1e-12)


def test_transforms_json_layout(exported: Exported) -> None:
    scene, transforms = exported
    assert list(transforms) == [
        "w",
        "h",
        "fl_x",
        "fl_y",
        "cx",
        "cy",
        "k1",
        "k2",
        "p1",
        "p2",
        "camera_model",
        "frames",
        "applied_transform",
        "ply_file_path",
        "scene_frame",  # ours (issue #14); nerfstudio ignores keys it does not know
    ]
    camera = scene.model.cameras[1]
    assert (transforms["w"], transforms["h"], transforms["camera_model"]) == (64, 48, "OPENCV")
    assert transforms["fl_x"] == camera.params[0] and transforms["cy"] == camera.params[3]
    assert transforms["applied_transform"] == [[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]]
    frames = transforms["frames"]
    assert [f["colmap_im_id"] for f in frames] == list(scene.model.images)  # images.bin order
    for frame in frames:
        image = scene.model.images[frame["colmap_im_id"]]
        assert frame["file_path"] == f"../../Frames/{image.name}"
        np.testing.assert_allclose(
            frame["transform_matrix"], expected_c2w(image.qvec, image.tvec), atol=1e-12
        )


def test_scene_frame_is_the_models_frame_in_nerfstudios_world(exported: Exported) -> None:
    scene, transforms = exported
    recorded = transforms["scene_frame"]
    expected = frame_from_model(scene.model).rotated(APPLIED_TRANSFORM[:, :3])
    assert recorded == expected.to_json()
    assert recorded["up_rule"] in ("plane", "vertical", "fallback")
    # The synthetic room's gravity is COLMAP +y, nerfstudio's -z: up is +z there.
    assert np.dot(recorded["up"], [0.0, 0.0, 1.0]) > np.cos(np.radians(3))


def test_file_paths_resolve_to_the_extracted_frames(exported: Exported) -> None:
    scene, transforms = exported
    data_dir = scene.layout.nerfstudio_dir
    for frame in transforms["frames"]:
        path = data_dir / frame["file_path"]  # what nerfstudio's dataparser opens
        assert path.is_file()
        assert path.resolve() == (scene.layout.frames_dir / Path(frame["file_path"]).name).resolve()


def test_gravity_becomes_nerfstudio_minus_z(exported: Exported) -> None:
    _, transforms = exported
    # OpenGL camera +y is image up; in this orbit it leans towards world up, nerfstudio's +z.
    ups = np.array([np.array(f["transform_matrix"])[:3, 1] for f in transforms["frames"]])
    mean_up = ups.mean(axis=0) / np.linalg.norm(ups.mean(axis=0))
    assert mean_up @ np.array([0.0, 0.0, 1.0]) > np.cos(np.radians(5))


def test_sparse_point_cloud_is_in_nerfstudios_world(exported: Exported) -> None:
    scene, transforms = exported
    ply = PlyData.read(str(scene.layout.nerfstudio_dir / transforms["ply_file_path"]))
    vertex = ply["vertex"]
    assert ply.text and [p.name for p in vertex.properties] == [
        "x",
        "y",
        "z",
        "red",
        "green",
        "blue",
    ]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=-1).astype(np.float64)
    colmap = scene.model.points3d
    expected = np.stack([colmap.xyz[:, 0], colmap.xyz[:, 2], -colmap.xyz[:, 1]], axis=-1)
    np.testing.assert_allclose(xyz, expected, atol=2e-6)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=-1)
    np.testing.assert_array_equal(rgb, colmap.rgb)


def _model_with_cameras(cameras: dict[int, ColmapCamera]) -> ColmapModel:
    images = {
        10 + k: ColmapImage(10 + k, np.array([1.0, 0, 0, 0]), np.zeros(3), cid, f"s_{k:06d}.jpg")
        for k, cid in enumerate(cameras)
    }
    return ColmapModel(cameras, images, Points3D.empty())


def test_intrinsics_go_per_frame_unless_the_only_camera_has_id_1(tmp_path: Path) -> None:
    pinhole = ColmapCamera(2, "PINHOLE", 64, 48, (50.0, 51.0, 32.0, 24.0))
    radial = ColmapCamera(5, "SIMPLE_RADIAL", 80, 60, (60.0, 40.0, 30.0, -0.1))
    for cameras in ({2: pinhole}, {2: pinhole, 5: radial}):
        model = _model_with_cameras(cameras)
        transforms = json.loads(write_nerfstudio_data(tmp_path, model).read_text())
        assert "fl_x" not in transforms and "camera_model" not in transforms
        for frame in transforms["frames"]:
            camera = cameras[model.images[frame["colmap_im_id"]].camera_id]
            assert frame == {**frame, **camera_intrinsics_entry(camera)}
    assert transforms["frames"][1]["k1"] == -0.1 and transforms["frames"][1]["w"] == 80
    one = json.loads(
        write_nerfstudio_data(
            tmp_path,
            _model_with_cameras({1: ColmapCamera(1, "PINHOLE", 64, 48, (50.0, 51.0, 32.0, 24.0))}),
        ).read_text()
    )
    assert one["fl_y"] == 51.0 and "fl_x" not in one["frames"][0]


def test_camera_model_mapping() -> None:
    entry = camera_intrinsics_entry(ColmapCamera(1, "SIMPLE_RADIAL", 8, 6, (5.0, 4.0, 3.0, -0.1)))
    assert entry == {
        "w": 8,
        "h": 6,
        "fl_x": 5.0,
        "fl_y": 5.0,
        "cx": 4.0,
        "cy": 3.0,
        "k1": -0.1,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "camera_model": "OPENCV",
    }
    fisheye = ColmapCamera(1, "OPENCV_FISHEYE", 8, 6, (5.0, 6.0, 4.0, 3.0, 0.1, 0.2, 0.3, 0.4))
    entry = camera_intrinsics_entry(fisheye)
    assert entry["camera_model"] == "OPENCV_FISHEYE" and entry["k4"] == 0.4 and "p1" not in entry
    full = ColmapCamera(7, "FULL_OPENCV", 8, 6, tuple(float(i) for i in range(12)))
    with pytest.raises(UnsupportedCameraError, match="cannot describe camera 7's FULL_OPENCV"):
        camera_intrinsics_entry(full)


def test_splat_ply_frame_and_transforms_json_poses_show_the_same_images() -> None:
    """§3.1 and §3.6 together: the exported ``splat.ply`` (COLMAP splats turned by
    ``applied_transform``) seen through a ``transform_matrix`` (OpenGL c2w), turned into a
    view matrix as splatfacto does (columns 1 and 2 negated, then inverted), renders exactly
    what the COLMAP-frame splats render through the COLMAP pose."""
    splats = random_splats(150, seed=4, dtype=torch.float64)
    for eye in [(0.3, -0.5, -3.0), (2.5, 1.0, 1.5), (-0.2, -2.8, 0.4)]:
        colmap_camera = look_at_camera(eye, width=32, height=24)
        w2c = colmap_camera.world_to_camera.numpy()
        image = ColmapImage(1, matrix_to_quat(w2c[:3, :3]), w2c[:3, 3].copy(), 1, "a.jpg")
        c2w_gl = nerfstudio_c2w(image)
        c2w_cv = c2w_gl @ np.diag([1.0, -1.0, -1.0, 1.0])
        ns_camera = Camera(torch.from_numpy(np.linalg.inv(c2w_cv)), colmap_camera.K, 32, 24)
        ns_splats = rotate_splats(splats, APPLIED_TRANSFORM[:, :3])
        settings = RenderSettings(sh_degree=3)
        expected = render_dense(splats.activated(), colmap_camera, settings).rgb
        seen = render_dense(ns_splats.activated(), ns_camera, settings).rgb
        assert float(expected.std()) > 0.05  # the splats are in view
        torch.testing.assert_close(seen, expected, rtol=0, atol=1e-9)
