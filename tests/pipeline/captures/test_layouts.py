"""Every capture layout of the synthetic scene gives the trainer the same views and poses as the
ground truth; bad inputs fail naming what is wrong."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.captures.detect import detect_layout
from pipeline.captures.prepare import PreparedCapture, prepare_capture
from pipeline.cli import main
from pipeline.dataset import DatasetConfig
from pipeline.errors import ColmapTextError, InputError
from pipeline.progress import NullProgress
from pipeline.run import StageTracker
from pipeline.synthetic import SyntheticScene
from pipeline.synthetic.captures import (
    write_colmap_project,
    write_nerfstudio_capture,
    write_photos,
)
from tests.pipeline.synthetic.factories import make_tiny_job

Writer = Callable[[SyntheticScene, Path], object]

LAYOUTS: dict[str, Writer] = {
    "colmap_binary": lambda s, r: write_colmap_project(s, r),
    "colmap_text": lambda s, r: write_colmap_project(s, r, text=True),
    "colmap_sparse_direct_subfolders": lambda s, r: write_colmap_project(
        s, r, sparse="sparse", subfolders=True
    ),
    "nerfstudio": lambda s, r: write_nerfstudio_capture(s, r),
    "nerfstudio_random_init": lambda s, r: write_nerfstudio_capture(s, r, points=False),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return make_tiny_job(tmp_path_factory.mktemp("job"))


def prepare(root: Path, out: Path) -> PreparedCapture:
    tracker = StageTracker(NullProgress())
    return prepare_capture(detect_layout(root), out, DatasetConfig(eval_every=0), tracker)


def _frame_index(scene: SyntheticScene, view_name: str) -> int:
    stem = Path(view_name).stem
    return next(i for i in range(len(scene.frames)) if Path(scene.image_name(i)).stem == stem)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_gives_the_ground_truth_views(
    scene: SyntheticScene, tmp_path: Path, layout: str
) -> None:
    LAYOUTS[layout](scene, tmp_path / "data")
    prepared = prepare(tmp_path / "data", tmp_path / "out")
    views = prepared.scene.train
    assert len(views) == len(scene.model.images)
    for view in views:
        index = _frame_index(scene, view.name)
        truth = scene.cameras[index]
        torch.testing.assert_close(
            view.camera.world_to_camera, truth.world_to_camera, atol=1e-5, rtol=0
        )
        torch.testing.assert_close(view.camera.K, truth.K, atol=1e-4, rtol=0)
        assert torch.equal(view.image, torch.from_numpy(scene.frames[index]))
    random_init = layout == "nerfstudio_random_init"
    assert prepared.inputs["points"] == (0 if random_init else len(scene.model.points3d))
    assert prepared.inputs["layout"] == layout.split("_")[0]


def test_mixed_portrait_and_landscape_with_exif_orientation(
    scene: SyntheticScene, tmp_path: Path
) -> None:
    model = write_colmap_project(scene, tmp_path / "data", portrait_every=2, exif_portraits=True)
    sideways = next(i for i in model.images.values() if i.camera_id == 2)
    with Image.open(tmp_path / "data" / "images" / sideways.name) as stored:
        assert stored.size == (scene.config.width, scene.config.height)  # stored landscape
    prepared = prepare(tmp_path / "data", tmp_path / "out")
    sizes = {(v.camera.width, v.camera.height) for v in prepared.scene.train}
    assert sizes == {(64, 48), (48, 64)}
    portrait = next(v for v in prepared.scene.train if v.name == sideways.name)
    assert tuple(portrait.image.shape) == (64, 48, 3)
    # Upright: the top rows show the wall, the bottom rows the floor, as in the landscape views.
    expected = np.asarray(Image.open(tmp_path / "data" / "images" / sideways.name).transpose(
        Image.Transpose.ROTATE_270
    ))  # fmt: skip
    np.testing.assert_array_equal(portrait.image.numpy(), expected)


def test_auki_job_layout_extracts_frames_and_trains_on_them(
    tmp_path: Path,
) -> None:
    scene = make_tiny_job(tmp_path / "job")
    prepared = prepare(tmp_path / "job", tmp_path / "out")
    assert prepared.inputs["layout"] == "auki"
    assert len(prepared.scene.train) == len(scene.model.images)
    for view in prepared.scene.train:
        truth = scene.cameras[_frame_index(scene, view.name)]
        torch.testing.assert_close(view.camera.world_to_camera, truth.world_to_camera)


# --- bad input ---------------------------------------------------------------------------------


def _train_fails(data: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["train", str(data), "--out", str(out), "--steps", "2", "--no-preview"]) == 1
    captured = capsys.readouterr()
    last = json.loads(captured.out.splitlines()[-1])
    assert last["event"] == "error"
    assert captured.err.strip().splitlines()[-1] == f"error: {last['message']}"
    return str(last["message"])


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    message = _train_fails(tmp_path / "empty", tmp_path / "out", capsys)
    assert "no capture found" in message and "found: an empty folder" in message


def test_images_not_matching_the_camera_size_are_named(
    scene: SyntheticScene, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_colmap_project(scene, tmp_path / "data")
    victim = next(iter(model.images.values())).name
    Image.new("RGB", (50, 40)).save(tmp_path / "data" / "images" / victim)
    message = _train_fails(tmp_path / "data", tmp_path / "out", capsys)
    assert victim in message and "is 50x40" in message and "64x48" in message


def test_malformed_text_model_line_is_named(
    scene: SyntheticScene, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_colmap_project(scene, tmp_path / "data", text=True)
    images_txt = tmp_path / "data" / "sparse" / "0" / "images.txt"
    lines = images_txt.read_text().splitlines()
    lines[4] = "3 0.5 0.5 not-a-number 0.5 0 0 0 1 x.png"
    images_txt.write_text("\n".join(lines) + "\n")
    message = _train_fails(tmp_path / "data", tmp_path / "out", capsys)
    assert f"{images_txt}:5:" in message and "could not convert string to float" in message
    with pytest.raises(ColmapTextError):
        prepare(tmp_path / "data", tmp_path / "out")


def test_missing_images_are_listed(scene: SyntheticScene, tmp_path: Path) -> None:
    model = write_colmap_project(scene, tmp_path / "data")
    gone = next(iter(model.images.values())).name
    (tmp_path / "data" / "images" / gone).unlink()
    with pytest.raises(InputError, match=gone):
        prepare(tmp_path / "data", tmp_path / "out")


def test_photos_without_the_sfm_extra_name_the_install_command(
    scene: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pycolmap" else real(name, *a)
    )
    write_photos(scene, tmp_path / "photos")
    message = _train_fails(tmp_path / "photos", tmp_path / "out", capsys)
    assert "pip install 'splatter-node[sfm]'" in message
    assert not (tmp_path / "out").exists()  # nothing heavy started


def test_input_is_left_untouched(scene: SyntheticScene, tmp_path: Path) -> None:
    write_colmap_project(scene, tmp_path / "data", text=True)
    before = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    prepare(tmp_path / "data", tmp_path / "out")
    after = {p: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert before == after
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
