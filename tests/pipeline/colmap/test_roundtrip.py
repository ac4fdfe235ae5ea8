"""COLMAP binary reader/writer: round trips, known byte layouts, pycolmap cross-checks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.colmap import (
    CAMERA_MODELS,
    ColmapModel,
    ColmapRig,
    Points3D,
    model_by_id,
    model_by_name,
    qvec_to_rotmat,
    read_cameras,
    read_model,
    rotmat_to_qvec,
    write_model,
)
from tests.pipeline.colmap.factories import random_model, random_unit_quaternion


def assert_models_equal(a: ColmapModel, b: ColmapModel) -> None:
    assert a.cameras == b.cameras
    assert list(a.images) == list(b.images)
    for image_id, image in a.images.items():
        other = b.images[image_id]
        assert (image.name, image.camera_id) == (other.name, other.camera_id)
        np.testing.assert_array_equal(image.qvec, other.qvec)
        np.testing.assert_array_equal(image.tvec, other.tvec)
        np.testing.assert_array_equal(image.points2d, other.points2d)
        np.testing.assert_array_equal(image.point3d_ids, other.point3d_ids)
    order_a, order_b = np.argsort(a.points3d.ids), np.argsort(b.points3d.ids)
    np.testing.assert_array_equal(a.points3d.ids[order_a], b.points3d.ids[order_b])
    np.testing.assert_array_equal(a.points3d.xyz[order_a], b.points3d.xyz[order_b])
    np.testing.assert_array_equal(a.points3d.rgb[order_a], b.points3d.rgb[order_b])
    np.testing.assert_array_equal(a.points3d.error[order_a], b.points3d.error[order_b])
    for row_a, row_b in zip(order_a, order_b, strict=True):
        for x, y in zip(a.points3d.track(int(row_a)), b.points3d.track(int(row_b)), strict=True):
            np.testing.assert_array_equal(x, y)
    assert (a.rigs is None) == (b.rigs is None) and (a.frames is None) == (b.frames is None)
    if a.rigs is not None and b.rigs is not None:
        assert a.rigs.keys() == b.rigs.keys()
        for rig_id, rig in a.rigs.items():
            _assert_rigs_equal(rig, b.rigs[rig_id])
    if a.frames is not None and b.frames is not None:
        assert a.frames.keys() == b.frames.keys()
        for frame_id, frame in a.frames.items():
            other_frame = b.frames[frame_id]
            assert (frame.rig_id, frame.data_ids) == (other_frame.rig_id, other_frame.data_ids)
            np.testing.assert_array_equal(frame.qvec, other_frame.qvec)
            np.testing.assert_array_equal(frame.tvec, other_frame.tvec)


def _assert_rigs_equal(a: ColmapRig, b: ColmapRig) -> None:
    assert a.ref_sensor == b.ref_sensor
    assert len(a.sensors) == len(b.sensors)
    for x, y in zip(a.sensors, b.sensors, strict=True):
        assert (x.sensor_type, x.sensor_id) == (y.sensor_type, y.sensor_id)
        assert (x.sensor_from_rig is None) == (y.sensor_from_rig is None)
        if x.sensor_from_rig is not None:
            assert y.sensor_from_rig is not None
            np.testing.assert_array_equal(
                np.concatenate(x.sensor_from_rig), np.concatenate(y.sensor_from_rig)
            )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_rigs", [True, False])
def test_write_then_read_returns_the_same_model(tmp_path: Path, seed: int, with_rigs: bool) -> None:
    model = random_model(seed, with_rigs=with_rigs)
    write_model(model, tmp_path)
    assert (tmp_path / "rigs.bin").exists() == with_rigs
    assert_models_equal(model, read_model(tmp_path))


def test_every_colmap_camera_model_survives_a_round_trip(tmp_path: Path) -> None:
    model = random_model(3)
    assert {c.model for c in model.cameras.values()} == {spec.name for spec in CAMERA_MODELS}
    write_model(model, tmp_path)
    assert read_cameras(tmp_path / "cameras.bin") == model.cameras


def test_camera_model_table_matches_colmap_ids_and_param_counts() -> None:
    # From COLMAP's sensor/models.h: id -> (name, number of parameters).
    expected = {
        0: ("SIMPLE_PINHOLE", 3),
        1: ("PINHOLE", 4),
        2: ("SIMPLE_RADIAL", 4),
        3: ("RADIAL", 5),
        4: ("OPENCV", 8),
        5: ("OPENCV_FISHEYE", 8),
        6: ("FULL_OPENCV", 12),
        7: ("FOV", 5),
        8: ("SIMPLE_RADIAL_FISHEYE", 4),
        9: ("RADIAL_FISHEYE", 5),
        10: ("THIN_PRISM_FISHEYE", 12),
        11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
        12: ("SIMPLE_DIVISION", 4),
        13: ("DIVISION", 5),
        14: ("SIMPLE_FISHEYE", 3),
        15: ("FISHEYE", 4),
        16: ("EUCM", 6),
        17: ("EQUIRECTANGULAR", 2),
    }
    assert {s.model_id: (s.name, s.num_params) for s in CAMERA_MODELS} == expected
    assert model_by_id(99) is None
    assert model_by_name("OPENCV").model_id == 4


def test_cameras_bin_bytes_follow_colmaps_layout(tmp_path: Path) -> None:
    # Hand-assembled file: u64 count; u32 id, i32 model, u64 width, u64 height, f64 params.
    data = struct.pack("<Q", 2)
    data += struct.pack("<IiQQ3d", 7, 0, 640, 480, 500.0, 320.0, 240.0)
    data += struct.pack("<IiQQ8d", 3, 4, 1920, 1080, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    (tmp_path / "cameras.bin").write_bytes(data)
    cameras = read_cameras(tmp_path / "cameras.bin")
    assert cameras[7].model == "SIMPLE_PINHOLE" and cameras[7].params == (500.0, 320.0, 240.0)
    assert (cameras[3].model, cameras[3].width, cameras[3].height) == ("OPENCV", 1920, 1080)
    write_model(ColmapModel(cameras, {}, Points3D.empty()), tmp_path / "out")
    # The writer orders cameras by id, exactly as COLMAP does.
    first_record = 4 + 4 + 8 + 8 + 3 * 8
    reordered = data[:8] + data[8 + first_record :] + data[8 : 8 + first_record]
    assert (tmp_path / "out" / "cameras.bin").read_bytes() == reordered


def test_quaternion_conversions_are_inverse() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        q = random_unit_quaternion(rng)
        R = qvec_to_rotmat(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(rotmat_to_qvec(R), q, atol=1e-12)


def test_images_points_rigs_frames_bytes_follow_colmaps_layout(tmp_path: Path) -> None:
    """Files assembled by hand from COLMAP's documented layout, independent of our writer."""
    name = b"scan_000003.jpg"
    images = struct.pack("<Q", 1) + struct.pack("<I4d3dI", 9, 1, 0, 0, 0, 1.5, -2.0, 3.0, 7)
    images += name + b"\0" + struct.pack("<Q", 2)
    images += struct.pack("<ddQ", 10.5, 20.25, 42) + struct.pack("<ddQ", 1.0, 2.0, 2**64 - 1)
    points = struct.pack("<Q", 1) + struct.pack("<Q3d3BdQ", 42, 0.1, 0.2, 0.3, 10, 20, 30, 0.5, 1)
    points += struct.pack("<II", 9, 0)
    cameras = struct.pack("<Q", 1) + struct.pack("<IiQQ4d", 7, 1, 64, 48, 50, 51, 32, 24)
    rigs = struct.pack("<Q", 1) + struct.pack("<IIiI", 1, 2, 0, 7)
    rigs += struct.pack("<iIB7d", 0, 8, 1, 1, 0, 0, 0, 0.1, 0.2, 0.3)
    frames = struct.pack("<Q", 1) + struct.pack("<II7dI", 5, 1, 1, 0, 0, 0, 1.5, -2, 3, 1)
    frames += struct.pack("<iIQ", 0, 7, 9)
    for file_name, data in [
        ("cameras.bin", cameras),
        ("images.bin", images),
        ("points3D.bin", points),
        ("rigs.bin", rigs),
        ("frames.bin", frames),
    ]:
        (tmp_path / file_name).write_bytes(data)
    model = read_model(tmp_path)
    image = model.images[9]
    assert (image.name, image.camera_id) == ("scan_000003.jpg", 7)
    np.testing.assert_array_equal(image.tvec, [1.5, -2.0, 3.0])
    np.testing.assert_array_equal(image.points2d, [[10.5, 20.25], [1.0, 2.0]])
    assert image.point3d_ids.tolist() == [42, 2**64 - 1]
    np.testing.assert_array_equal(model.points3d.xyz, [[0.1, 0.2, 0.3]])
    assert model.points3d.rgb.tolist() == [[10, 20, 30]] and model.points3d.error.tolist() == [0.5]
    assert [a.tolist() for a in model.points3d.track(0)] == [[9], [0]]
    assert model.rigs is not None and model.frames is not None
    rig = model.rigs[1]
    assert rig.ref_sensor == (0, 7) and rig.sensors[0].sensor_id == 8
    assert rig.sensors[0].sensor_from_rig is not None
    np.testing.assert_array_equal(rig.sensors[0].sensor_from_rig[1], [0.1, 0.2, 0.3])
    assert model.frames[5].data_ids == ((0, 7, 9),) and model.frames[5].rig_id == 1
    # Our writer reproduces every file byte for byte.
    write_model(model, tmp_path / "again")
    for file_name, data in [
        ("cameras.bin", cameras),
        ("images.bin", images),
        ("points3D.bin", points),
        ("rigs.bin", rigs),
        ("frames.bin", frames),
    ]:
        assert (tmp_path / "again" / file_name).read_bytes() == data, file_name
