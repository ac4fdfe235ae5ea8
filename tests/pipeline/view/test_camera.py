"""The viewer's first view is the preview orbit's first frame, in whichever frame is shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.export.rotate import NERFSTUDIO_TO_OUTPUT, rotate_splats
from pipeline.preview.render import FrameRenderer
from pipeline.render import get_rasterizer
from pipeline.view.camera import first_view
from pipeline.view.job_folder import frame_job_folder
from tests.support.scenes import room_splats, write_room_outputs


def _first_preview_pose(folder: Path) -> np.ndarray:
    path = json.loads((folder / "preview_camera_path.json").read_text())
    return np.array(path["camera_path"][0]["camera_to_world"]).reshape(4, 4)


def test_the_first_view_is_the_first_pose_of_the_preview_camera_path(tmp_path: Path) -> None:
    exported = write_room_outputs(tmp_path, 3000)
    view = first_view(exported.nerfstudio_splats, exported.nerfstudio_up)
    np.testing.assert_allclose(view.c2w, _first_preview_pose(tmp_path), atol=1e-9)
    np.testing.assert_allclose(view.pose(0.0, view.pitch_deg, view.distance), view.c2w, atol=1e-9)


def test_a_job_folder_shows_its_splat_from_the_preview_pose_in_the_output_frame(
    tmp_path: Path,
) -> None:
    write_room_outputs(tmp_path, 3000)
    framed = frame_job_folder(tmp_path)
    assert framed is not None and framed.path.name == "splat_rot.splat" and not framed.live
    rotation = np.eye(4)
    rotation[:3, :3] = NERFSTUDIO_TO_OUTPUT
    np.testing.assert_allclose(
        framed.camera.c2w, rotation @ _first_preview_pose(tmp_path), atol=1e-6
    )


def test_rotating_the_world_and_the_rig_together_renders_the_same_image() -> None:
    splats = room_splats(2000)
    view = first_view(splats, [0.0, -1.0, 0.0])
    R = NERFSTUDIO_TO_OUTPUT
    moved = view.transformed(R)
    rasterizer = get_rasterizer("cpu")
    before = FrameRenderer(splats, rasterizer).render(view.path_camera(view.c2w, 96, 64))
    rotated = rotate_splats(splats, R, rotate_sh_bands=False)
    after = FrameRenderer(rotated, rasterizer).render(moved.path_camera(moved.c2w, 96, 64))
    assert before.std() > 10  # something is in view
    assert np.abs(before.astype(int) - after.astype(int)).max() <= 2
    np.testing.assert_allclose(moved.up, R @ view.up, atol=1e-12)


@pytest.mark.parametrize("yaw", [0.0, 90.0, 200.0])
def test_poses_look_at_the_target_from_the_asked_distance_with_up_up(yaw: float) -> None:
    view = first_view(room_splats(1000), [0.0, -1.0, 0.0])
    c2w = view.pose(yaw, 20.0, 3.0)
    eye, forward, image_up = c2w[:3, 3], -c2w[:3, 2], c2w[:3, 1]
    np.testing.assert_allclose(np.linalg.norm(eye - view.target), 3.0)
    np.testing.assert_allclose(forward, (view.target - eye) / 3.0, atol=1e-12)
    assert image_up @ view.up > 0.9  # pitch 20°: image up is close to the scene's up
    elevation = np.degrees(np.arcsin((eye - view.target) @ view.up / 3.0))
    np.testing.assert_allclose(elevation, 20.0, atol=1e-9)
