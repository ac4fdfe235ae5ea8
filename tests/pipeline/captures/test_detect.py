"""Layout detection: every layout found, and errors that name what was found and what is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.captures.detect import detect_layout
from pipeline.errors import InputError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.mark.parametrize("sparse", ["sparse/0", "sparse"])
@pytest.mark.parametrize("suffix", [".bin", ".txt"])
def test_colmap_project_in_sparse_0_or_sparse(tmp_path: Path, sparse: str, suffix: str) -> None:
    _touch(
        tmp_path,
        "images/a/1.jpg",
        *(f"{sparse}/{n}{suffix}" for n in ("cameras", "images", "points3D")),
    )
    capture = detect_layout(tmp_path)
    assert capture.kind == "colmap"
    assert capture.model_dir == tmp_path / sparse and capture.images_dir == tmp_path / "images"


def test_incomplete_model_lists_the_files_found_and_needed(tmp_path: Path) -> None:
    _touch(tmp_path, "images/1.jpg", "sparse/0/cameras.bin", "sparse/0/images.txt")
    with pytest.raises(InputError, match=r"no complete COLMAP model.*cameras\.bin.*images\.txt"):
        detect_layout(tmp_path)


def test_model_without_images_folder(tmp_path: Path) -> None:
    _touch(tmp_path, *(f"sparse/0/{n}.bin" for n in ("cameras", "images", "points3D")))
    with pytest.raises(InputError, match="no images/ folder"):
        detect_layout(tmp_path)


def test_nerfstudio_folder_or_file(tmp_path: Path) -> None:
    _touch(tmp_path, "transforms.json", "images/1.png")
    assert detect_layout(tmp_path).kind == "nerfstudio"
    capture = detect_layout(tmp_path / "transforms.json")
    assert capture.kind == "nerfstudio" and capture.transforms == tmp_path / "transforms.json"


def test_auki_job_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "datasets/scan/Frames.mp4")
    capture = detect_layout(tmp_path)
    assert capture.kind == "auki"
    assert capture.model_dir == tmp_path / "refined/global/refined_sfm_combined"


def test_photos_in_sub_folders_sorted_hidden_ignored(tmp_path: Path) -> None:
    _touch(tmp_path, "b/2.JPG", "a/1.png", "3.jpeg", ".thumbs/x.jpg", "notes.txt")
    capture = detect_layout(tmp_path)
    assert capture.kind == "images"
    assert [p.relative_to(tmp_path).as_posix() for p in capture.images] == [
        "3.jpeg",
        "a/1.png",
        "b/2.JPG",
    ]


def test_one_video_or_a_folder_of_videos(tmp_path: Path) -> None:
    _touch(tmp_path, "walk.MOV", "more/loop.mp4")
    assert detect_layout(tmp_path / "walk.MOV").videos == (tmp_path / "walk.MOV",)
    assert len(detect_layout(tmp_path).videos) == 2


def test_photos_and_videos_mixed_are_refused(tmp_path: Path) -> None:
    _touch(tmp_path, "a.jpg", "b.mp4")
    with pytest.raises(InputError, match=r"both photos \(1\) and videos \(1\)"):
        detect_layout(tmp_path)


def test_empty_folder_says_what_each_layout_needs(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        detect_layout(tmp_path)
    message = str(caught.value)
    assert "found: an empty folder" in message
    for needed in ("sparse/0/", "transforms.json", ".jpg", "video", "datasets/<scan>/Frames.mp4"):
        assert needed in message


def test_folder_of_other_files_lists_them(tmp_path: Path) -> None:
    _touch(tmp_path, "readme.md", "data/x.csv")
    with pytest.raises(InputError, match=r"found: data/, readme\.md"):
        detect_layout(tmp_path)


def test_missing_path_and_unknown_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        detect_layout(tmp_path / "nope")
    _touch(tmp_path, "x.csv")
    with pytest.raises(InputError, match="neither a video"):
        detect_layout(tmp_path / "x.csv")
