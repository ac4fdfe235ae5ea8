"""The synthetic job: folder layout, recording, COLMAP model, manifest, ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.colmap import qvec_to_rotmat, read_model
from pipeline.contract import frame_name
from pipeline.scene_frame import estimate_scene_frame
from pipeline.synthetic import SyntheticConfig, SyntheticScene
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.pipeline.video_factories import decode_all


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return make_tiny_job(tmp_path_factory.mktemp("job"), unregistered_every=5)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_job_folder_has_the_reference_layout(scene: SyntheticScene) -> None:
    root = scene.layout.root
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    model = "refined/global/refined_sfm_combined"
    assert files == [
        "datasets/2025-01-01_10-00-00/Frames.mp4",
        "refined/global/refined_manifest.json",
        f"{model}/cameras.bin",
        f"{model}/frames.bin",
        f"{model}/images.bin",
        f"{model}/points3D.bin",
        f"{model}/rigs.bin",
    ]


def test_recording_holds_every_frame(scene: SyntheticScene) -> None:
    decoded = decode_all(scene.layout.recording(scene.config.scan))
    assert len(decoded) == 12 and decoded[0].shape == (48, 64, 3)
    for index in (0, 7, 11):
        assert psnr(decoded[index], scene.frames[index]) > 33


def test_model_names_match_frame_indices(scene: SyntheticScene) -> None:
    model = read_model(scene.layout.model_dir)
    assert scene.registered == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]  # every 5th left out
    by_name = model.images_by_name()
    assert sorted(by_name) == [frame_name(scene.config.scan, i) for i in scene.registered]
    ids_in_name_order = [by_name[name].image_id for name in sorted(by_name)]
    assert ids_in_name_order != sorted(ids_in_name_order)  # ids are shuffled, like real models
    for index in scene.registered:
        image = by_name[scene.image_name(index)]
        truth = scene.cameras[index].world_to_camera.double().numpy()
        np.testing.assert_allclose(image.world_to_camera(), truth, atol=1e-6)


def test_rigs_and_frames_describe_the_same_poses(scene: SyntheticScene) -> None:
    model = read_model(scene.layout.model_dir)
    assert model.rigs is not None and model.frames is not None
    assert list(model.rigs) == [1] and model.rigs[1].ref_sensor == (0, 1)
    assert set(model.frames) == set(model.images)
    for frame in model.frames.values():
        image = model.images[frame.data_ids[0][2]]
        np.testing.assert_array_equal(frame.qvec, image.qvec)
        np.testing.assert_array_equal(frame.tvec, image.tvec)


def test_points_project_onto_their_keypoints(scene: SyntheticScene) -> None:
    model = read_model(scene.layout.model_dir)
    points = model.points3d
    assert len(points) > 100 and points.track_lengths().min() >= 2
    fx, fy, cx, cy = model.cameras[1].params
    errors = []
    for row in range(len(points)):
        for image_id, idx in zip(*points.track(row), strict=True):
            image = model.images[int(image_id)]
            assert image.point3d_ids[idx] == points.ids[row]
            cam = qvec_to_rotmat(image.qvec) @ points.xyz[row] + image.tvec
            projected = np.array([fx * cam[0] / cam[2] + cx, fy * cam[1] / cam[2] + cy])
            errors.append(np.linalg.norm(projected - image.points2d[idx]))
    assert np.median(errors) < 1.0 and np.max(errors) < 3.0


def test_gravity_points_along_plus_y(scene: SyntheticScene) -> None:
    poses = np.stack([c.world_to_camera.double().numpy() for c in scene.cameras])
    up = estimate_scene_frame(poses).up
    assert up @ np.array([0.0, -1.0, 0.0]) > np.cos(np.radians(5))
    means = scene.gaussians.means
    assert means[:, 1].max() < 0.5 and means[:, 1].min() < -2.0  # floor at 0, wall above it


def test_manifest_looks_like_the_reconstruction_servers(scene: SyntheticScene) -> None:
    manifest = json.loads(scene.layout.manifest_path.read_text())
    assert manifest == scene.manifest
    assert manifest["dataIDs"] == ["refined_scan_2025-01-01_10-00-00"]
    assert manifest["jobStatus"] == "refined" and manifest["processingType"] == "global_refinement"
    assert manifest["jobName"] == f"job_{manifest['jobID']}"
    assert manifest["createdAt"] == "2025-01-02T03:04:05Z"
    assert scene.manifest_name == "refined_manifest_2025-01-02_03-04-05"


def test_same_seed_same_job(scene: SyntheticScene, tmp_path: Path) -> None:
    again = make_tiny_job(tmp_path, unregistered_every=5)
    for name in ("cameras.bin", "images.bin", "points3D.bin", "rigs.bin", "frames.bin"):
        assert (again.layout.model_dir / name).read_bytes() == (
            scene.layout.model_dir / name
        ).read_bytes()
    np.testing.assert_array_equal(again.frames, scene.frames)


def test_distorted_camera_and_no_rigs(tmp_path: Path) -> None:
    scene = make_tiny_job(tmp_path, camera_model="OPENCV", write_rigs=False, views=4)
    model = read_model(scene.layout.model_dir)
    assert model.rigs is None and model.frames is None
    camera = model.cameras[1]
    assert camera.model == "OPENCV" and camera.param("k1") == pytest.approx(-0.06)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="even and ≥ 16, got 65x48"):
        SyntheticConfig(width=65, height=48)
    with pytest.raises(ValueError, match="at least 3 views"):
        SyntheticConfig(views=2)


def test_lens_override_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"OPENCV takes 4 lens coefficients \(k1, k2, p1, p2\)"):
        make_tiny_job(tmp_path, camera_model="OPENCV", lens=(0.1,))
    scene = make_tiny_job(tmp_path, camera_model="RADIAL", lens=(-0.2, 0.03), views=3)
    assert scene.model.cameras[1].params[3:] == (-0.2, 0.03)
