"""Captures without poses: structure from motion, and what SfM poses cost in quality.

1. SfM (pycolmap 4.2.1 on the CPU: SIFT, exhaustive matching, incremental mapping) on the
   synthetic room photographed 30 times at 256×192 (6,000 ground-truth Gaussians): seconds,
   registered fraction, and the recovered poses' errors after a similarity alignment to the true
   ones (median / max rotation in degrees, median camera-centre error in metres; orbit radius
   3 m).
2. The same room photographed 20 times, trained twice with ``train_capture`` (600 CPU steps,
   at most 5,000 Gaussians, every 4th photo held out): from the true poses (a COLMAP project)
   and from the photos alone (SfM poses); the held-out PSNR of each, and of a flat image of the
   training photos' mean colour.

Skipped (with a line saying so) when the ``sfm`` extra is not installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.table import BenchRow, BenchTable
from pipeline.captures.alignment import PoseErrors, pose_errors
from pipeline.captures.detect import detect_layout
from pipeline.captures.sfm import SfmOptions, reconstruct
from pipeline.captures.train import train_capture
from pipeline.colmap import ColmapModel
from pipeline.progress import NullProgress
from pipeline.run import RunConfig, StageTracker
from pipeline.synthetic import SyntheticConfig, SyntheticScene, make_synthetic_job
from pipeline.synthetic.captures import write_colmap_project, write_photos

ROOM = SyntheticConfig(views=30, width=256, height=192, gaussians=6000, points=500)
TRAIN = RunConfig(backend="cpu", steps=600, eval_every=4, previews=False, max_gaussians=5000)


def run(table: BenchTable) -> None:
    if importlib.util.find_spec("pycolmap") is None:
        print("skipped: the 'sfm' extra (pycolmap) is not installed")
        return
    with tempfile.TemporaryDirectory(prefix="bench_captures_") as tmp:
        _bench_sfm(table, Path(tmp) / "sfm")
        _bench_given_vs_sfm(table, Path(tmp) / "train")


def _bench_sfm(table: BenchTable, root: Path) -> None:
    scene = make_synthetic_job(root / "job", ROOM)
    write_photos(scene, root / "photos")
    started = time.perf_counter()
    result = reconstruct(detect_layout(root / "photos"), root / "out", StageTracker(NullProgress()))
    seconds = time.perf_counter() - started
    errors = _errors(scene, result.model)
    note = (
        f"{result.registered}/{result.candidates} registered; rotation error median "
        f"{np.median(errors.rotation_deg):.2f}° max {errors.rotation_deg.max():.2f}°, centre "
        f"error median {np.median(errors.position):.3f} m max {errors.position.max():.3f} m"
    )
    table.add(BenchRow("SfM, 30 photos 256x192 (pycolmap, CPU)", seconds, "s", note=note))
    table.add(BenchRow("SfM registered fraction, 30 photos", result.registered / result.candidates,
                       "", lower_is_better=False))  # fmt: skip


def _errors(scene: SyntheticScene, model: ColmapModel) -> PoseErrors:
    images = sorted(model.images.values(), key=lambda image: image.name)
    recovered = np.stack([image.world_to_camera() for image in images])
    true = np.stack(
        [scene.cameras[int(Path(i.name).stem)].world_to_camera.double().numpy() for i in images]
    )
    return pose_errors(recovered, true)


def _bench_given_vs_sfm(table: BenchTable, root: Path) -> None:
    scene = make_synthetic_job(root / "job", dataclasses.replace(ROOM, views=20))
    write_colmap_project(scene, root / "given")
    write_photos(scene, root / "photos")
    given = _train(root / "given", root / "out_given")
    sfm = _train(root / "photos", root / "out_sfm")
    for label, report in (("given poses", given), ("SfM poses", sfm)):
        quality, inputs = report["quality"], report["inputs"]
        note = f"flat mean colour {quality['flat_psnr']:.2f} dB; SSIM {quality['ssim']:.3f}"
        if "registered" in inputs:
            note += f"; {inputs['registered']}/{inputs['sfm_candidates']} registered"
        table.add(BenchRow(f"20 photos, {label}: held-out PSNR ({TRAIN.steps} steps)",
                           quality["psnr"], "dB", lower_is_better=False, note=note))  # fmt: skip


def _train(data: Path, out: Path) -> dict[str, Any]:
    with contextlib.redirect_stdout(None):
        train_capture(data, out, TRAIN, StageTracker(NullProgress()), SfmOptions())
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report
