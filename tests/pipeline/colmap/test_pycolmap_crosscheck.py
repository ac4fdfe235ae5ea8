"""Cross-check the reader and writer against pycolmap (optional extra ``colmap``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.colmap import read_model, write_model
from tests.pipeline.colmap.factories import random_model

pycolmap = pytest.importorskip("pycolmap", reason="pycolmap (optional extra 'colmap') missing")


def test_pycolmap_reads_what_we_write(tmp_path: Path) -> None:
    model = random_model(4, odd_rigs=False)
    write_model(model, tmp_path)
    reconstruction = pycolmap.Reconstruction(str(tmp_path))
    assert reconstruction.num_rigs() == len(model.rigs or {})
    assert reconstruction.num_frames() == len(model.frames or {})
    for camera_id, camera in model.cameras.items():
        theirs = reconstruction.cameras[camera_id]
        assert theirs.model.name == camera.model
        assert (theirs.width, theirs.height) == (camera.width, camera.height)
        np.testing.assert_array_equal(theirs.params, camera.params)
    for image_id, image in model.images.items():
        theirs = reconstruction.images[image_id]
        assert theirs.name == image.name and theirs.camera_id == image.camera_id
        np.testing.assert_allclose(
            theirs.cam_from_world().matrix(), image.world_to_camera()[:3], atol=1e-12
        )
        xy = np.array([p.xy for p in theirs.points2D]).reshape(-1, 2)
        np.testing.assert_array_equal(xy, image.points2d)
    for row in range(len(model.points3d)):
        theirs = reconstruction.points3D[int(model.points3d.ids[row])]
        np.testing.assert_array_equal(theirs.xyz, model.points3d.xyz[row])
        np.testing.assert_array_equal(theirs.color, model.points3d.rgb[row])
        elements = sorted((e.image_id, e.point2D_idx) for e in theirs.track.elements)
        assert elements == sorted(
            zip(*(a.tolist() for a in model.points3d.track(row)), strict=True)
        )


def test_we_read_what_pycolmap_writes(tmp_path: Path) -> None:
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 2, 2, 3
    options.num_points3D = 50
    reconstruction = pycolmap.synthesize_dataset(options)
    reconstruction.write_binary(str(tmp_path))
    model = read_model(tmp_path)
    assert model.rigs is not None and model.frames is not None
    assert len(model.rigs) == reconstruction.num_rigs()
    assert len(model.frames) == reconstruction.num_frames()
    assert len(model.images) == reconstruction.num_images() and len(model.cameras) == 4
    for image_id, image in model.images.items():
        theirs = reconstruction.images[image_id]
        assert image.name == theirs.name
        np.testing.assert_allclose(
            image.world_to_camera()[:3], theirs.cam_from_world().matrix(), atol=1e-12
        )
    for rig in model.rigs.values():
        theirs = reconstruction.rigs[rig.rig_id]
        assert rig.ref_sensor == (int(theirs.ref_sensor_id.type.value), theirs.ref_sensor_id.id)
        assert len(rig.sensors) == theirs.num_sensors() - 1
    for frame in model.frames.values():
        theirs = reconstruction.frames[frame.frame_id]
        assert frame.rig_id == theirs.rig_id
        ours = sorted(data_id[1:] for data_id in frame.data_ids)
        assert ours == sorted((d.sensor_id.id, d.id) for d in theirs.data_ids)
    ids = {int(i) for i in model.points3d.ids}
    assert ids == set(reconstruction.point3D_ids())
