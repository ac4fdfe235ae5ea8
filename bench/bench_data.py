"""Input side: COLMAP model I/O, frame extraction, dataset loading, synthetic job generation."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench.table import BenchRow, BenchTable, best_of
from pipeline.colmap import (
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    Points3D,
    read_images,
    read_points3d,
    write_model,
)
from pipeline.contract import JobLayout, frame_name
from pipeline.dataset import DatasetConfig, load_scene
from pipeline.frames import extract_frames
from pipeline.synthetic import SyntheticConfig, make_synthetic_job
from pipeline.video import encode_video


def run(table: BenchTable) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root = Path(tmp)
        _bench_model_io(table, root / "model")
        _bench_frames_and_dataset(table, root / "job")
        _bench_synthetic(table, root / "synthetic")


def _big_model(num_images: int, keypoints: int, num_points: int, track: int) -> ColmapModel:
    rng = np.random.default_rng(0)
    camera = ColmapCamera(1, "OPENCV", 1920, 1440, (1400.0, 1400.0, 960.0, 720.0, 0.01, 0, 0, 0))
    images = {
        i: ColmapImage(i, np.array([1.0, 0, 0, 0]), rng.normal(size=3), 1, frame_name("scan", i),
                       rng.uniform(0, 1900, (keypoints, 2)),
                       rng.integers(1, num_points, keypoints).astype(np.uint64))
        for i in range(1, num_images + 1)
    }  # fmt: skip
    points = Points3D(
        ids=np.arange(1, num_points + 1, dtype=np.uint64),
        xyz=rng.normal(size=(num_points, 3)),
        rgb=rng.integers(0, 256, (num_points, 3)).astype(np.uint8),
        error=rng.uniform(0, 1, num_points),
        track_offsets=np.arange(num_points + 1, dtype=np.int64) * track,
        track_image_ids=rng.integers(1, num_images + 1, num_points * track).astype(np.uint32),
        track_point2d_idx=rng.integers(0, keypoints, num_points * track).astype(np.uint32),
    )
    return ColmapModel({1: camera}, images, points)


def _bench_model_io(table: BenchTable, folder: Path) -> None:
    points, images = 200_000, 500
    model = _big_model(images, 2_000, points, 6)
    write_model(model, folder)
    seconds = best_of(lambda: read_points3d(folder / "points3D.bin"), repeats=3)
    table.add(BenchRow("read points3D.bin 200k points, track 6", points / seconds, "points/s",
                       lower_is_better=False, note=f"{seconds:.2f} s"))  # fmt: skip
    seconds = best_of(lambda: read_images(folder / "images.bin"), repeats=3)
    table.add(BenchRow("read images.bin 500 images x 2k keypoints", images / seconds, "images/s",
                       lower_is_better=False, note=f"{seconds:.3f} s"))  # fmt: skip


def _bench_frames_and_dataset(table: BenchTable, root: Path) -> None:
    layout = JobLayout(root)
    width, height, count = 1280, 720, 120
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    frames = (np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), i * 4, axis=1)
              for i in range(count))  # fmt: skip
    layout.recording("scan").parent.mkdir(parents=True)
    encode_video(layout.recording("scan"), frames, (width, height), fps=30, crf=23)
    every_fourth = [frame_name("scan", i) for i in range(0, count, 4)]

    def extract() -> None:
        shutil.rmtree(layout.frames_dir, ignore_errors=True)
        extract_frames(root, image_names=every_fourth)

    seconds = best_of(extract, repeats=3)
    table.add(BenchRow("extract every 4th of 120 frames 1280x720", len(every_fourth) / seconds,
                       "frames/s", lower_is_better=False,
                       note=f"{seconds:.2f} s, decode all + JPEG q95"))  # fmt: skip
    _write_model_for(layout, every_fourth, width, height, distorted=False)
    seconds = best_of(lambda: load_scene(root, DatasetConfig(workers=2)), repeats=2)
    table.add(BenchRow("dataset 30 pinhole frames 1280x720", 30 / seconds, "images/s",
                       lower_is_better=False, note="decode JPEG, 2 threads"))  # fmt: skip
    _write_model_for(layout, every_fourth, width, height, distorted=True)
    seconds = best_of(lambda: load_scene(root, DatasetConfig(workers=2)), repeats=2)
    table.add(BenchRow("dataset 30 OPENCV frames 1280x720", 30 / seconds, "images/s",
                       lower_is_better=False, note="decode + undistort, 2 threads"))  # fmt: skip


def _write_model_for(
    layout: JobLayout, names: list[str], width: int, height: int, distorted: bool
) -> None:
    lens = (-0.05, 0.01, 0.0, 0.0) if distorted else (0.0, 0.0, 0.0, 0.0)
    camera = ColmapCamera(
        1, "OPENCV", width, height, (1000.0, 1000.0, width / 2, height / 2, *lens)
    )
    images = {
        i + 1: ColmapImage(i + 1, np.array([1.0, 0, 0, 0]), np.zeros(3), 1, name)
        for i, name in enumerate(names)
    }
    write_model(ColmapModel({1: camera}, images, Points3D.empty()), layout.model_dir)


def _bench_synthetic(table: BenchTable, root: Path) -> None:
    seconds = best_of(lambda: make_synthetic_job(root, SyntheticConfig()), repeats=1, warmup=0)
    table.add(BenchRow("synthetic job, default (40 views 160x120, 2400 G)", seconds, "s",
                       note="rendered with the cpu rasterizer, H.264 encode"))  # fmt: skip
