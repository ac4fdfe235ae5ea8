"""The quality report: metrics equal the trainer's, pictures, self-contained HTML, best effort."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.dataset import DatasetConfig, load_scene
from pipeline.frames import extract_frames
from pipeline.render import get_rasterizer
from pipeline.report import MAX_LOSS_POINTS, ReportInputs, write_report
from pipeline.report.images import ERROR_FULL_SCALE, comparison_strip, error_map
from pipeline.report.write import _loss
from pipeline.scene import SceneData
from pipeline.train import TrainConfig, TrainResult, train
from tests.pipeline.synthetic.factories import make_tiny_job


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SceneData, TrainResult, TrainConfig]:
    root = tmp_path_factory.mktemp("job")
    make_tiny_job(root)
    extract_frames(root)
    scene = load_scene(root, DatasetConfig(eval_every=4))
    config = TrainConfig.cpu(30)
    return scene, train(scene, config, get_rasterizer("cpu")), config


def test_report_metrics_equal_the_trainers(
    trained: tuple[SceneData, TrainResult, TrainConfig], tmp_path: Path
) -> None:
    scene, result, config = trained
    loss = [(s, 1.0 / s) for s in range(1, 31)]
    data = ReportInputs(scene, result, config, get_rasterizer("cpu"), {"layout": "auki"}, loss)
    paths = write_report(tmp_path, data)
    report = json.loads(paths["report.json"].read_text())
    assert report["quality"]["views"] == result.metrics["views"] == 3
    assert report["quality"]["psnr"] == pytest.approx(result.metrics["psnr"], abs=1e-6)
    assert report["quality"]["ssim"] == pytest.approx(result.metrics["ssim"], abs=1e-6)
    per_view = [v["psnr"] for v in report["views"]]
    assert np.mean(per_view) == pytest.approx(report["quality"]["psnr"])
    assert report["training"]["gaussians"] == len(result.splats)
    assert report["inputs"] == {"layout": "auki"} and report["loss"][0] == [1, 1.0]
    for view in report["views"]:
        with Image.open(tmp_path / view["image"]) as strip:
            assert strip.size == (3 * 64 + 8, 48)
    with Image.open(tmp_path / "report" / "loss_curve.png") as curve:
        assert curve.size == (640, 320)


def test_flat_baseline_is_the_training_mean_colour(
    trained: tuple[SceneData, TrainResult, TrainConfig], tmp_path: Path
) -> None:
    scene, result, config = trained
    report = json.loads(
        write_report(tmp_path, ReportInputs(scene, result, config, get_rasterizer("cpu")))[
            "report.json"
        ].read_text()
    )
    colour = np.mean([v.image.numpy().reshape(-1, 3).mean(0) for v in scene.train], axis=0) / 255
    expected = np.mean(
        [10 * np.log10(1 / ((v.image.numpy() / 255 - colour) ** 2).mean()) for v in scene.eval]
    )
    assert report["quality"]["flat_psnr"] == pytest.approx(expected, abs=0.01)  # uint8 truth


def test_html_is_self_contained(
    trained: tuple[SceneData, TrainResult, TrainConfig], tmp_path: Path
) -> None:
    scene, result, config = trained
    html = write_report(tmp_path, ReportInputs(scene, result, config, get_rasterizer("cpu")))[
        "report.html"
    ].read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(sources) == 1 + len(scene.eval)  # loss curve + one strip per view
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in html and "lpips" not in html.lower()


def test_error_map_against_a_pixel_loop() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    render = rng.integers(0, 256, (5, 7, 3)).astype(np.uint8)
    heat = error_map(truth, render)
    for y in range(5):
        for x in range(7):
            e = np.mean(np.abs(truth[y, x].astype(float) - render[y, x].astype(float))) / 255
            t = min(e / ERROR_FULL_SCALE, 1.0)
            expected = [min(max(3 * t - k, 0), 1) * 255 for k in range(3)]
            np.testing.assert_allclose(heat[y, x], expected, atol=1.0)
    strip = comparison_strip(truth, render)
    np.testing.assert_array_equal(strip[:, :7], truth)
    np.testing.assert_array_equal(strip[:, 11:18], render)
    np.testing.assert_array_equal(strip[:, 22:29], heat)


def test_loss_is_thinned_to_the_limit_and_keeps_the_last_step(tmp_path: Path) -> None:
    history = [(s, float(s)) for s in range(1, 3001)]
    thinned = _loss(history, tmp_path / "none.json")
    assert (
        len(thinned) == MAX_LOSS_POINTS and thinned[0] == [1, 1.0] and thinned[-1] == [3000, 3000.0]
    )
    steps = [p[0] for p in thinned]
    assert steps == sorted(set(steps))


def test_a_resumed_run_keeps_the_earlier_curve(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"loss": [[1, 0.5], [2, 0.25]]}))
    assert _loss([], tmp_path / "report.json") == [[1, 0.5], [2, 0.25]]


def test_a_failing_report_is_a_warning_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.run
    from pipeline.cli import main

    def broken(out_dir: Path, data: ReportInputs) -> dict[str, Path]:
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.run, "write_report", broken)
    make_tiny_job(tmp_path)
    args = ["run", "--job-root", str(tmp_path), "--steps", "5", "--no-preview", "--threads", "1"]
    assert main(args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warning = next(e for e in events if e["event"] == "warning")
    assert warning["stage"] == "report" and "disk full" in warning["message"]
    assert events[-1]["event"] == "done" and "disk full" in events[-1]["warnings"][0]
    assert (tmp_path / "refined" / "splatter" / "splat_rot.splat").is_file()
