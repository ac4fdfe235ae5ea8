"""``python -m pipeline train`` on every layout of the synthetic scene: the held-out PSNR of the
trained splat beats a flat mean-colour image (training views' mean) by a clear margin."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.dataset import split_eval
from pipeline.synthetic import SyntheticScene
from pipeline.synthetic.captures import write_colmap_project
from tests.pipeline.captures.test_layouts import LAYOUTS
from tests.pipeline.synthetic.factories import make_tiny_job

# 500 steps with at most 2,000 Gaussians: about 3 dB over the flat image on this scene.
STEPS, EVAL_EVERY, MAX_GAUSSIANS, MARGIN_DB = 500, 4, 2000, 2.0
RANDOM_INIT_MARGIN_DB = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return make_tiny_job(tmp_path_factory.mktemp("job"))


def flat_psnr(scene: SyntheticScene) -> float:
    """Mean held-out PSNR of one flat image, the mean colour of the training frames (the same
    split as the trainer's: frames in name order, every 4th held out)."""
    frames = scene.frames.astype(np.float64) / 255.0
    train, held_out = split_eval(len(frames), EVAL_EVERY)
    colour = frames[train].mean(axis=(0, 1, 2))
    return float(
        np.mean([10 * math.log10(1 / ((frames[i] - colour) ** 2).mean()) for i in held_out])
    )


def train(data: Path, out: Path, steps: int = STEPS) -> dict[str, Any]:
    args = ["train", str(data), "--out", str(out), "--steps", str(steps), "--threads", "1"]
    args += ["--eval-every", str(EVAL_EVERY), "--max-gaussians", str(MAX_GAUSSIANS), "--no-preview"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(args) == 0
    done: dict[str, Any] = json.loads(stdout.getvalue().splitlines()[-1])
    assert done["event"] == "done"
    assert {"splat.ply", "splat_rot.ply", "splat_rot.splat"} <= done["outputs"].keys()
    return done


TRAINED_LAYOUTS = [n for n in sorted(LAYOUTS) if n != "nerfstudio_random_init"]


@pytest.mark.parametrize("layout", [*TRAINED_LAYOUTS, "colmap_mixed_portrait_exif"])
def test_trained_splat_beats_a_flat_image(
    scene: SyntheticScene, tmp_path: Path, layout: str
) -> None:
    if layout == "colmap_mixed_portrait_exif":
        write_colmap_project(scene, tmp_path / "data", portrait_every=3, exif_portraits=True)
        baseline = flat_psnr(scene) - 0.5  # portrait views differ; the landscape mean is near
    else:
        LAYOUTS[layout](scene, tmp_path / "data")
        baseline = flat_psnr(scene)
    done = train(tmp_path / "data", tmp_path / "out")
    assert done["metrics"]["views"] == 3
    assert done["metrics"]["psnr"] > baseline + MARGIN_DB, (done["metrics"], baseline)


def test_auki_job_through_train(scene: SyntheticScene, tmp_path: Path) -> None:
    job = make_tiny_job(tmp_path / "job")
    done = train(job.layout.root, tmp_path / "out")
    assert done["metrics"]["psnr"] > flat_psnr(job) + MARGIN_DB
    assert not (job.layout.root / "refined" / "splatter").exists()  # outputs went to --out


def test_nerfstudio_without_points_trains_from_random_points(
    scene: SyntheticScene, tmp_path: Path
) -> None:
    # Random points in the views' frusta, 3 camera extents deep, 1,000 steps: 19.8-20.8 dB over
    # seeds 0-2 (flat: 17.6 dB); run-to-run spread is about 1 dB, hence a 1 dB margin here.
    # splatfacto's 10-extent cube got 9.2 dB at 500 steps and lost every Gaussian at 1,000.
    LAYOUTS["nerfstudio_random_init"](scene, tmp_path / "data")
    done = train(tmp_path / "data", tmp_path / "out", steps=2 * STEPS)
    assert done["metrics"]["gaussians"] >= 1
    assert done["metrics"]["psnr"] > flat_psnr(scene) + RANDOM_INIT_MARGIN_DB, done["metrics"]
