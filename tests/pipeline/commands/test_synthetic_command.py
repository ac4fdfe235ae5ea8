"""``python -m pipeline synthetic``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.colmap import read_model


def test_writes_a_job_and_describes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["synthetic", "--job-root", str(tmp_path), "--views", "5", "--size", "32x24",
                 "--gaussians", "300", "--points", "100", "--seed", "4", "--scan", "scanA",
                 "--camera-model", "SIMPLE_RADIAL", "--no-rigs"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["event"] == "done" and summary["images"] == 5
    assert summary["config"]["seed"] == 4 and summary["config"]["width"] == 32
    assert Path(summary["video"]) == tmp_path / "datasets/scanA/Frames.mp4"
    model = read_model(tmp_path / "refined/global/refined_sfm_combined")
    assert model.cameras[1].model == "SIMPLE_RADIAL" and model.rigs is None
    assert sorted(image.name for image in model.images.values())[0] == "scanA_000000.jpg"


def test_bad_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic", "--job-root", str(tmp_path), "--size", "33x24"]) == 2
    assert "frame size must be even" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synthetic", "--job-root", str(tmp_path), "--size", "big"])
    assert "expected WIDTHxHEIGHT, got 'big'" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "synthetic", "--job-root", str(tmp_path),
         "--views", "3", "--size", "32x24", "--gaussians", "250", "--points", "50"],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[3],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["images"] == 3
