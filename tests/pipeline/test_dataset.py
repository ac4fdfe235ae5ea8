"""Dataset step: model + frames → SceneData, matched by name, undistorted, split, scaled."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.colmap import ColmapCamera, read_model, write_model
from pipeline.dataset import DatasetConfig, downscale_factor, load_scene, split_eval
from pipeline.errors import InputError, MissingFramesError, UnsupportedCameraError
from pipeline.frames import extract_frames
from pipeline.render.types import Camera, RenderSettings
from pipeline.synthetic import SyntheticScene
from pipeline.synthetic.render import render_pinhole
from tests.pipeline.synthetic.factories import make_tiny_job


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def prepared_job(root: Path, **overrides: object) -> SyntheticScene:
    scene = make_tiny_job(root, **overrides)
    extract_frames(root)
    return scene


@pytest.fixture(scope="module")
def pinhole_job(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return prepared_job(tmp_path_factory.mktemp("pinhole"))


@pytest.fixture
def job_copy(pinhole_job: SyntheticScene, tmp_path: Path) -> Path:
    """A private copy of the prepared job, free to damage."""
    shutil.copytree(pinhole_job.layout.root, tmp_path / "job")
    return tmp_path / "job"


def index_of(scene: SyntheticScene, name: str) -> int:
    return next(i for i in range(scene.config.views) if scene.image_name(i) == name)


def test_views_pair_each_frame_with_its_own_pose(pinhole_job: SyntheticScene) -> None:
    data = load_scene(pinhole_job.layout.root)
    views = sorted(data.train + data.eval, key=lambda view: view.name)
    assert [view.name for view in views] == sorted(pinhole_job.image_name(i) for i in range(12))
    for view in views:
        truth = pinhole_job.cameras[index_of(pinhole_job, view.name)]
        torch.testing.assert_close(view.camera.world_to_camera, truth.world_to_camera)
        torch.testing.assert_close(view.camera.K, truth.K)
        assert view.image.dtype == torch.uint8 and view.image.shape == (48, 64, 3)
        frame = np.asarray(Image.open(pinhole_job.layout.frames_dir / view.name))
        np.testing.assert_array_equal(view.image.numpy(), frame)


def test_images_agree_with_the_ground_truth_scene(pinhole_job: SyntheticScene) -> None:
    data = load_scene(pinhole_job.layout.root)
    for view in data.train[:3]:
        rgb, _, _ = render_pinhole(pinhole_job.gaussians, view.camera, RenderSettings(sh_degree=0))
        rendered = (rgb.clamp(0, 1) * 255).round().byte().numpy()
        assert psnr(view.image.numpy(), rendered) > 28


def test_matching_ignores_image_ids_and_file_order(
    pinhole_job: SyntheticScene, job_copy: Path
) -> None:
    model_dir = job_copy / "refined/global/refined_sfm_combined"
    model = read_model(model_dir)
    # New ids in reverse name order, images written in yet another order, tracks remapped.
    names = sorted(image.name for image in model.images.values())
    new_id = {model.images_by_name()[name].image_id: 500 - k for k, name in enumerate(names)}
    images = {}
    for old_id in sorted(model.images, key=lambda i: (i * 7919) % 101):
        image = model.images[old_id]
        image.image_id = new_id[old_id]
        images[image.image_id] = image
    model.images = images
    model.points3d.track_image_ids[:] = [new_id[int(i)] for i in model.points3d.track_image_ids]
    model.rigs = model.frames = None
    write_model(model, model_dir)
    (model_dir / "rigs.bin").unlink()
    (model_dir / "frames.bin").unlink()
    before = load_scene(pinhole_job.layout.root)
    after = load_scene(job_copy)
    for a, b in zip(before.train + before.eval, after.train + after.eval, strict=True):
        assert a.name == b.name
        torch.testing.assert_close(a.camera.world_to_camera, b.camera.world_to_camera)
        assert torch.equal(a.image, b.image)


def test_hold_out_split_and_points(pinhole_job: SyntheticScene) -> None:
    data = load_scene(pinhole_job.layout.root, DatasetConfig(eval_every=5))
    names = sorted(pinhole_job.image_name(i) for i in range(12))
    assert [view.name for view in data.eval] == [names[0], names[5], names[10]]
    assert [view.name for view in data.train] == [n for k, n in enumerate(names) if k % 5]
    assert load_scene(pinhole_job.layout.root, DatasetConfig(eval_every=0)).eval == []
    model = pinhole_job.model
    np.testing.assert_allclose(data.points.numpy(), model.points3d.xyz, atol=1e-6)
    assert data.points.dtype == torch.float32 and data.point_colors.dtype == torch.uint8
    np.testing.assert_array_equal(data.point_colors.numpy(), model.points3d.rgb)
    assert data.frame.up @ np.array([0.0, -1.0, 0.0]) > np.cos(np.radians(3))


def test_split_eval() -> None:
    assert split_eval(10, 8) == ([1, 2, 3, 4, 5, 6, 7, 9], [0, 8])
    assert split_eval(3, 0) == ([0, 1, 2], [])


def test_default_split_is_the_references_linspace_fraction() -> None:
    """pipeline-reference.md §3.2 / checklist row 5: nerfstudio's ``fraction`` mode,
    ``i_train = linspace(0, n-1, ceil(0.9 n)).astype(int)``, the rest held out."""
    # n = 20: 18 training images at 0, 19/17, 2·19/17, … → ints skip 9 and 18 (hand-computed).
    assert split_eval(20, None) == ([i for i in range(20) if i not in (9, 18)], [9, 18])
    # n = 10: linspace(0, 9, 9) = 0, 1.125, …, 7.875, 9 → 8 is the only gap.
    assert split_eval(10, None)[1] == [8]
    assert split_eval(12, None)[1] == [10]  # linspace(0, 11, 11): 9.9 → 9, then 11
    assert split_eval(2, None) == ([0, 1], [])  # ceil(1.8) = 2: nothing held out
    assert split_eval(1, None) == ([0], [])
    for n in range(1, 200):
        train, held = split_eval(n, None)
        assert len(train) == math.ceil(0.9 * n) and train[0] == 0 and train[-1] == n - 1
        assert sorted(train + held) == list(range(n))
    assert split_eval(10, None, train_fraction=0.5) == ([0, 2, 4, 6, 9], [1, 3, 5, 7, 8])


def test_load_scene_uses_the_reference_split_by_default(pinhole_job: SyntheticScene) -> None:
    data = load_scene(pinhole_job.layout.root)
    names = sorted(pinhole_job.image_name(i) for i in range(12))
    assert [view.name for view in data.eval] == [names[10]]
    assert [view.name for view in data.train] == names[:10] + names[11:]


def test_downscale_by_factor(pinhole_job: SyntheticScene) -> None:
    data = load_scene(pinhole_job.layout.root, DatasetConfig(downscale=2))
    view = data.train[0]
    assert view.image.shape == (24, 32, 3) and (view.camera.width, view.camera.height) == (32, 24)
    truth = pinhole_job.cameras[index_of(pinhole_job, view.name)].K
    torch.testing.assert_close(view.camera.K[:2], truth[:2] * 0.5)
    full = np.asarray(Image.open(pinhole_job.layout.frames_dir / view.name), dtype=np.float64)
    box = full.reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))  # 2x2 box filter
    assert np.abs(view.image.numpy() - box).max() <= 1.0


def test_downscale_factor_rules() -> None:
    default = DatasetConfig()
    assert downscale_factor(1600, 1200, default) == 1
    assert downscale_factor(1920, 1440, default) == 2
    assert downscale_factor(4032, 3024, default) == 4
    assert downscale_factor(4032, 3024, DatasetConfig(max_side=None)) == 1
    assert downscale_factor(640, 480, DatasetConfig(downscale=3)) == 3
    with pytest.raises(ValueError, match="eval_every must be ≥ 0 or None, got -1"):
        DatasetConfig(eval_every=-1)
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\], got 0.0"):
        DatasetConfig(train_fraction=0.0)


def test_model_image_without_frame(job_copy: Path) -> None:
    frames = sorted((job_copy / "Frames").iterdir())
    frames[3].unlink()
    with pytest.raises(MissingFramesError) as info:
        load_scene(job_copy)
    assert str(info.value) == (
        f"1 of 12 model images have no frame in {job_copy / 'Frames'}: {frames[3].name}"
    )
    assert info.value.missing == [frames[3].name]


def test_frame_of_the_wrong_size(job_copy: Path) -> None:
    frame = sorted((job_copy / "Frames").iterdir())[2]
    Image.new("RGB", (32, 24)).save(frame)
    with pytest.raises(
        InputError, match=f"frame {frame} is 32x24, but its camera 1 in the model is 64x48"
    ):
        load_scene(job_copy)


def test_frame_that_is_not_a_jpeg(job_copy: Path) -> None:
    frame = sorted((job_copy / "Frames").iterdir())[5]
    frame.write_bytes(b"\xff\xd8 broken")
    with pytest.raises(InputError, match=f"cannot decode frame {frame}: "):
        load_scene(job_copy)


def test_unsupported_camera_model_is_named(job_copy: Path) -> None:
    model_dir = job_copy / "refined/global/refined_sfm_combined"
    model = read_model(model_dir)
    model.cameras[1] = ColmapCamera(1, "FOV", 64, 48, (50.0, 50.0, 32.0, 24.0, 0.01))
    write_model(model, model_dir)
    with pytest.raises(UnsupportedCameraError, match="camera 1 uses the FOV model"):
        load_scene(job_copy)


STRONG_LENSES = {
    "OPENCV": (-0.25, 0.05, 0.004, -0.003),
    "OPENCV_FISHEYE": (0.1, -0.05, 0.01, 0.0),
    "FULL_OPENCV": (-0.25, 0.05, 0.004, -0.003, 0.01, 0.05, 0.0, 0.0),
}


def truth_image(scene: SyntheticScene, camera: Camera) -> np.ndarray:
    rgb, _, _ = render_pinhole(scene.gaussians, camera, RenderSettings(sh_degree=0))
    return np.asarray((rgb.clamp(0, 1) * 255).round().byte().numpy())


@pytest.mark.parametrize("model", sorted(STRONG_LENSES))
def test_distorted_frames_become_the_true_pinhole_images(tmp_path: Path, model: str) -> None:
    scene = prepared_job(
        tmp_path, camera_model=model, lens=STRONG_LENSES[model], views=4, width=96, height=72
    )
    views = load_scene(scene.layout.root, DatasetConfig(eval_every=0)).train
    undistorted, skipped, unchanged = [], [], []
    for view in views:
        raw = np.asarray(Image.open(scene.layout.frames_dir / view.name))
        truth = truth_image(scene, view.camera)
        undistorted.append(psnr(view.image.numpy(), truth))
        skipped.append(psnr(raw, truth))  # as if the resampling were skipped
        original = scene.cameras[index_of(scene, view.name)]
        unchanged.append(psnr(raw, truth_image(scene, original)))  # as if the lens were ignored
    # Distortion, compression and undistortion lose a little; a wrong lens loses much more.
    assert np.mean(undistorted) > 32
    assert np.mean(undistorted) > max(np.mean(skipped), np.mean(unchanged)) + 3
