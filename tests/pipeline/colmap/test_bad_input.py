"""Every malformed COLMAP input gets a specific error naming file, record and offset."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.colmap import read_model, write_model
from pipeline.errors import ColmapFormatError, InputError
from tests.pipeline.colmap.factories import random_model

FILES = ["cameras.bin", "images.bin", "points3D.bin", "rigs.bin", "frames.bin"]
# Every way a cut-off file can be reported.
TRUNCATION_REASONS = (
    "ends early",
    "header claims",
    "runs past",
    "inside a point record",
    "NUL-terminated",
    "claims",
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    write_model(random_model(7, num_images=6, num_points=30), tmp_path)
    return tmp_path


@pytest.mark.parametrize("file_name", FILES)
@pytest.mark.parametrize("cut", [0.0, 0.001, 0.02, 0.3, 0.5, 0.77, 0.999])
def test_truncated_file_is_reported_with_file_and_offset(
    model_dir: Path, file_name: str, cut: float
) -> None:
    path = model_dir / file_name
    data = path.read_bytes()
    keep = max(1, min(len(data) - 1, int(len(data) * cut))) if cut else 0
    path.write_bytes(data[:keep])
    with pytest.raises(ColmapFormatError) as info:
        read_model(model_dir)
    message = str(info.value)
    assert message.startswith(f"corrupt COLMAP file {file_name}")
    assert any(reason in message for reason in TRUNCATION_REASONS), message
    assert info.value.offset is not None and 0 <= info.value.offset <= keep
    assert f"byte offset {info.value.offset}" in message


@pytest.mark.parametrize("file_name", FILES)
def test_garbage_record_count_is_reported(model_dir: Path, file_name: str) -> None:
    path = model_dir / file_name
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", 2**60 + 3)
    path.write_bytes(bytes(data))
    with pytest.raises(
        ColmapFormatError,
        match=rf"{file_name}, header, byte offset 0: "
        rf"header claims {2**60 + 3} \w+, but only \d+ bytes follow",
    ):
        read_model(model_dir)


@pytest.mark.parametrize("file_name", FILES)
def test_trailing_bytes_are_reported(model_dir: Path, file_name: str) -> None:
    path = model_dir / file_name
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    with pytest.raises(ColmapFormatError, match="3 unexpected bytes after the last record"):
        read_model(model_dir)


def _single_camera(model_id: int, params: tuple[float, ...], width: int = 64) -> bytes:
    head = struct.pack("<Q", 1) + struct.pack("<IiQQ", 1, model_id, width, 48)
    return head + struct.pack(f"<{len(params)}d", *params)


def test_unknown_camera_model_id(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(42, (1.0, 2.0, 3.0)))
    with pytest.raises(ColmapFormatError) as info:
        read_model_files(tmp_path)
    assert str(info.value) == (
        "corrupt COLMAP file cameras.bin, camera 1 of 1, byte offset 8: "
        "unknown camera model id 42 (COLMAP knows 0..17)"
    )


def test_camera_with_zero_size_or_nan_params(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (1.0, 2.0, 3.0), width=0))
    with pytest.raises(ColmapFormatError, match="implausible image size 0x48"):
        read_model_files(tmp_path)
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (float("nan"), 2.0, 3.0)))
    with pytest.raises(ColmapFormatError, match="non-finite SIMPLE_PINHOLE parameters"):
        read_model_files(tmp_path)


def read_model_files(folder: Path) -> None:
    """read_model with empty images/points files where the test did not write them."""
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        if not (folder / name).exists():
            (folder / name).write_bytes(struct.pack("<Q", 0))
    read_model(folder)


def _single_image(name: bytes, camera_id: int = 1, qw: float = 1.0) -> bytes:
    head = struct.pack("<Q", 1) + struct.pack("<I4d3dI", 5, qw, 0, 0, 0, 0, 0, 0, camera_id)
    return head + name + b"\0" + struct.pack("<Q", 0)


def test_non_utf8_image_name(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (1.0, 2.0, 3.0)))
    (tmp_path / "images.bin").write_bytes(_single_image(b"scan_\xff\xfe.jpg"))
    with pytest.raises(ColmapFormatError) as info:
        read_model_files(tmp_path)
    assert "images.bin, image 1 of 1 (id 5), byte offset 72" in str(info.value)
    assert "image name is not valid UTF-8 (b'scan_\\xff\\xfe.jpg')" in str(info.value)


def test_unterminated_image_name(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (1.0, 2.0, 3.0)))
    (tmp_path / "images.bin").write_bytes(_single_image(b"scan_000001.jpg")[:-9])
    with pytest.raises(ColmapFormatError, match="image name is not NUL-terminated"):
        read_model_files(tmp_path)


def test_empty_name_and_invalid_pose(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (1.0, 2.0, 3.0)))
    (tmp_path / "images.bin").write_bytes(_single_image(b""))
    with pytest.raises(ColmapFormatError, match="image name is empty"):
        read_model_files(tmp_path)
    (tmp_path / "images.bin").write_bytes(_single_image(b"a.jpg", qw=0.0))
    with pytest.raises(ColmapFormatError, match=r"invalid pose q=\[0.0, 0.0, 0.0, 0.0\]"):
        read_model_files(tmp_path)


def test_image_referring_to_a_missing_camera(tmp_path: Path) -> None:
    (tmp_path / "cameras.bin").write_bytes(_single_camera(0, (1.0, 2.0, 3.0)))
    (tmp_path / "images.bin").write_bytes(_single_image(b"a_000001.jpg", camera_id=9))
    with pytest.raises(ColmapFormatError) as info:
        read_model_files(tmp_path)
    assert str(info.value) == (
        "corrupt COLMAP file images.bin, image 'a_000001.jpg' (id 5): "
        "refers to camera 9, which cameras.bin does not define"
    )


def test_duplicate_image_names(model_dir: Path) -> None:
    model = random_model(7, num_images=6, num_points=30)
    first, second = list(model.images.values())[:2]
    second.name = first.name
    write_model(model, model_dir)
    with pytest.raises(ColmapFormatError, match=f"duplicate image name '{first.name}'"):
        read_model(model_dir)


def test_track_referring_to_a_missing_image(model_dir: Path) -> None:
    model = random_model(7, num_images=6, num_points=30)
    model.points3d.track_image_ids[0] = 999_999
    write_model(model, model_dir)
    with pytest.raises(
        ColmapFormatError, match=r"track refers to image 999999, not in images\.bin"
    ):
        read_model(model_dir)


def test_missing_files_are_all_named(model_dir: Path) -> None:
    (model_dir / "cameras.bin").unlink()
    (model_dir / "points3D.bin").unlink()
    with pytest.raises(InputError) as info:
        read_model(model_dir)
    assert not isinstance(info.value, ColmapFormatError)
    assert str(info.value) == (
        f"COLMAP model in {model_dir} is incomplete: missing cameras.bin, points3D.bin"
    )


def test_rigs_and_frames_are_optional(model_dir: Path) -> None:
    (model_dir / "rigs.bin").unlink()
    (model_dir / "frames.bin").unlink()
    model = read_model(model_dir)
    assert model.rigs is None and model.frames is None and len(model.images) == 6


def test_random_corruption_never_escapes_as_a_foreign_exception(model_dir: Path) -> None:
    rng = np.random.default_rng(11)
    originals = {name: (model_dir / name).read_bytes() for name in FILES}
    for _ in range(300):
        name = FILES[int(rng.integers(len(FILES)))]
        data = bytearray(originals[name])
        for position in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
            data[int(position)] = int(rng.integers(256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(len(data)))]
        (model_dir / name).write_bytes(bytes(data))
        with contextlib.suppress(InputError):  # anything else fails the test
            read_model(model_dir)
        (model_dir / name).write_bytes(originals[name])
