"""Downscaled copies for ``ns-train``: the levels nerfstudio's auto-downscale looks for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import InputError
from pipeline.train.nerfstudio_images import auto_downscale_factor, write_downscaled_images


def nerfstudio_pick(data_dir: Path, file_path: str) -> Path:
    """Which file nerfstudio 1.1.5's dataparser loads for ``file_path`` (its ``_get_fname``
    rule, restated: double the factor while the longer side / factor ≥ 1600 and the next
    ``images_<2·factor>`` folder holds the file)."""
    with Image.open(data_dir / file_path) as image:
        longest = max(image.size)
    factor = 1
    name = Path(file_path).name
    while longest / factor >= 1600 and (data_dir / f"images_{factor * 2}" / name).exists():
        factor *= 2
    return data_dir / f"images_{factor}" / name if factor > 1 else data_dir / file_path


def make_dataset(root: Path, width: int, height: int, count: int = 2) -> Path:
    frames_dir, data_dir = root / "Frames", root / "refined" / "nerfstudio-data"
    frames_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(frames_dir / f"scan_{i:06d}.jpg")
        frames.append({"file_path": f"../../Frames/scan_{i:06d}.jpg"})
    (data_dir / "transforms.json").write_text(json.dumps({"frames": frames}))
    return data_dir


@pytest.mark.parametrize(
    ("size", "factor"),
    [((1599, 900), 1), ((1600, 900), 2), ((1920, 1080), 2), ((900, 3200), 4), ((3199, 10), 2)],
)
def test_auto_factor_follows_nerfstudios_rule(size: tuple[int, int], factor: int) -> None:
    assert auto_downscale_factor(*size) == factor


def test_nerfstudio_loads_the_reference_resolution(tmp_path: Path) -> None:
    data_dir = make_dataset(tmp_path, 3300, 20)
    assert write_downscaled_images(data_dir) == 4
    assert sorted(p.name for p in data_dir.iterdir() if p.is_dir()) == ["images_2", "images_4"]
    for i in range(2):
        picked = nerfstudio_pick(data_dir, f"../../Frames/scan_{i:06d}.jpg")
        assert picked == data_dir / "images_4" / f"scan_{i:06d}.jpg"
        with Image.open(picked) as image:
            assert image.size == (825, 5)
    with Image.open(data_dir / "images_2" / "scan_000000.jpg") as image:
        assert image.size == (1650, 10)


def test_small_frames_need_no_copies(tmp_path: Path) -> None:
    data_dir = make_dataset(tmp_path, 64, 48)
    assert write_downscaled_images(data_dir) == 1
    assert [p for p in data_dir.iterdir() if p.is_dir()] == []
    assert nerfstudio_pick(data_dir, "../../Frames/scan_000001.jpg").resolve() == (
        tmp_path / "Frames" / "scan_000001.jpg"
    )


def test_copies_are_averages_of_the_source_pixels(tmp_path: Path) -> None:
    data_dir = make_dataset(tmp_path, 1600, 8, count=1)
    flat = np.zeros((8, 1600, 3), np.uint8)
    flat[:, :800] = 200  # left half bright, right half dark
    Image.fromarray(flat).save(tmp_path / "Frames" / "scan_000000.jpg", quality=100)
    write_downscaled_images(data_dir)
    small = np.asarray(Image.open(data_dir / "images_2" / "scan_000000.jpg"), np.float64)
    assert small.shape == (4, 800, 3)
    assert abs(small[:, :390].mean() - 200) < 3 and small[:, 410:].mean() < 3


def test_a_missing_frame_is_named(tmp_path: Path) -> None:
    data_dir = make_dataset(tmp_path, 1700, 10)
    (tmp_path / "Frames" / "scan_000001.jpg").unlink()
    with pytest.raises(InputError, match=r"cannot read image .*scan_000001\.jpg"):
        write_downscaled_images(data_dir)
