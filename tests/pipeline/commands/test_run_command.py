"""``python -m pipeline run``: the whole pipeline on a tiny synthetic job, its event stream,
resume, bad inputs and termination."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.contract import STAGES
from pipeline.export import read_ply, read_splat
from pipeline.mp4 import probe_mp4
from tests.pipeline.synthetic.factories import make_tiny_job

PROJECT_ROOT = Path(__file__).resolve().parents[3]
FAST = ["--steps", "40", "--preview-size", "64x36", "--preview-fps", "2", "--threads", "1"]
SPLATTER_FILES = {
    "splat.ply",
    "splat_rot.ply",
    "splat_rot.splat",
    "splat_rot.sog",  # #13: the SOG, best effort, unless --no-sog
    "preview.mp4",
    "preview_top.jpg",
    "preview_angle.jpg",
    "preview_camera_path.json",
    "run_state.json",
    "report.json",
    "report.html",
}


@dataclass
class Finished:
    """A finished ``python -m pipeline run`` child."""

    job_root: Path
    returncode: int
    events: list[dict[str, Any]]
    stderr: str


def run_child(job_root: Path, *args: str) -> subprocess.Popen[str]:
    """Start the CLI as the node does: its own process, the project on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "pipeline", "run", "--job-root", str(job_root), *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finish(job_root: Path, child: subprocess.Popen[str]) -> Finished:
    stdout, stderr = child.communicate(timeout=600)
    events = [json.loads(line) for line in stdout.splitlines()]  # stdout is only JSON lines
    return Finished(job_root, child.returncode, events, stderr)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    job_root = tmp_path_factory.mktemp("job")
    make_tiny_job(job_root)
    return finish(job_root, run_child(job_root, *FAST))


def test_run_succeeds_and_leaves_exactly_the_outputs(finished_run: Finished) -> None:
    assert finished_run.returncode == 0, finished_run.stderr
    splatter = finished_run.job_root / "refined" / "splatter"
    top_level = {p.name for p in splatter.iterdir()}
    # #11: the live training snapshot and its sidecar stay beside the outputs (not outputs).
    assert top_level == SPLATTER_FILES | {"checkpoints", "report", "live.splat", "live.json"}
    leftovers = [p for p in finished_run.job_root.rglob("*") if "partial" in p.name]
    assert leftovers == []
    assert (finished_run.job_root / "refined" / "nerfstudio-data" / "transforms.json").is_file()


def test_outputs_are_consistent_with_each_other(finished_run: Finished) -> None:
    splatter = finished_run.job_root / "refined" / "splatter"
    done = finished_run.events[-1]
    assert done["event"] == "done"
    count = int(done["metrics"]["gaussians"])
    assert len(read_ply(splatter / "splat.ply").splats) == count
    assert len(read_splat(splatter / "splat_rot.splat").positions) == count
    video = probe_mp4(splatter / "preview.mp4")
    assert (video.width, video.height, video.sample_count) == (64, 36, 10)
    assert video.codec == "avc1" and video.moov_before_mdat
    assert {Path(p).name for p in done["outputs"].values()} == SPLATTER_FILES - {"run_state.json"}


def test_event_stream_walks_every_stage_in_order(finished_run: Finished) -> None:
    stage_events = [e for e in finished_run.events if e["event"] == "stage"]
    started = [e["stage"] for e in stage_events if e["status"] == "started"]
    completed = [e["stage"] for e in stage_events if e["status"] == "completed"]
    assert started == completed == [s for s in STAGES if s != "sfm"]  # no SfM in a job
    train = [e for e in finished_run.events if e["event"] == "progress" and e["stage"] == "train"]
    assert train[-1]["step"] == train[-1]["total"] == 40
    assert {"loss", "gaussians", "eta_s"} <= train[-1].keys()
    steps = [e["step"] for e in train]
    assert steps == sorted(steps)
    metrics = next(e for e in finished_run.events if e["event"] == "metrics")
    # 12 views, the reference's split (pipeline-reference.md §3.2): ceil(0.9 · 12) = 11 trained.
    assert metrics["psnr"] > 10.0 and metrics["views"] == 1


def test_training_announces_its_live_snapshots(finished_run: Finished) -> None:
    snapshots = [e for e in finished_run.events if e["event"] == "snapshot"]
    assert snapshots and snapshots[0]["step"] == 1  # the first one right after the first step
    last = snapshots[-1]
    assert last["file"] == "live.splat" and last["stage"] == "train"
    live = read_splat(finished_run.job_root / "refined" / "splatter" / "live.splat")
    assert len(live.positions) == last["gaussians"] > 0


def test_snapshot_every_zero_writes_none_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    make_tiny_job(tmp_path)
    args = ["run", "--job-root", str(tmp_path), "--steps", "3", "--no-preview", "--threads", "1"]
    events = _events_of(lambda: main([*args, "--snapshot-every", "0"]))
    assert not [e for e in events if e["event"] == "snapshot"]
    assert not (tmp_path / "refined" / "splatter" / "live.splat").exists()
    with pytest.raises(SystemExit) as refused:
        main([*args, "--snapshot-every", "-1"])
    assert refused.value.code == 2


def test_rerun_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    make_tiny_job(tmp_path)
    args = ["run", "--job-root", str(tmp_path), "--steps", "20", "--no-preview", "--threads", "1"]
    assert main(args) == 0
    splat = tmp_path / "refined" / "splatter" / "splat_rot.splat"
    first_bytes, first_mtime = splat.read_bytes(), splat.stat().st_mtime_ns
    events = _events_of(lambda: main(args))
    train_done = _stage_event(events, "train", "completed")
    assert train_done["resumed_from"] == 20
    skipped = [e["stage"] for e in events if e["event"] == "stage" and e["status"] == "skipped"]
    assert skipped == ["export", "preview"]
    assert splat.read_bytes() == first_bytes and splat.stat().st_mtime_ns == first_mtime


def test_no_sog_writes_no_sog(tmp_path: Path) -> None:
    make_tiny_job(tmp_path)
    args = ["run", "--job-root", str(tmp_path), "--steps", "5", "--no-preview", "--threads", "1"]
    assert main([*args, "--no-sog"]) == 0
    splatter = tmp_path / "refined" / "splatter"
    assert (splatter / "splat_rot.splat").is_file() and not (splatter / "splat_rot.sog").exists()
    events = _events_of(lambda: main(args))  # the SOG is now wanted: export is redone
    assert _stage_event(events, "export", "completed")
    assert (splatter / "splat_rot.sog").is_file()


def test_no_resume_starts_afresh(tmp_path: Path) -> None:
    make_tiny_job(tmp_path)
    base = ["run", "--job-root", str(tmp_path), "--steps", "10", "--no-preview", "--threads", "1"]
    assert main(base) == 0
    events = _events_of(lambda: main([*base, "--no-resume"]))
    train_done = _stage_event(events, "train", "completed")
    assert train_done["resumed_from"] is None
    skipped = [e["stage"] for e in events if e["event"] == "stage" and e["status"] == "skipped"]
    assert skipped == ["preview"]  # disabled, not "already done"


def _stage_event(events: list[dict[str, Any]], stage: str, status: str) -> dict[str, Any]:
    return next(
        e for e in events if e["event"] == "stage" and e["stage"] == stage and e["status"] == status
    )


def _events_of(call: Any) -> list[dict[str, Any]]:
    """Runs ``call`` in-process with stdout captured; returns its JSON events."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert call() == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_datasets", "no recordings:"),
        ("no_images_bin", "COLMAP model incomplete in"),
        ("corrupt_images_bin", "corrupt COLMAP file images.bin"),
        ("truncated_video", "damaged or truncated stream"),
        ("not_a_video", "Frames.mp4: not a readable video"),
    ],
)
def test_bad_inputs_fail_with_a_clear_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: str, message: str
) -> None:
    make_tiny_job(tmp_path)
    _break(tmp_path, breakage)
    assert main(["run", "--job-root", str(tmp_path), "--steps", "5", "--no-preview"]) == 1
    captured = capsys.readouterr()
    last_event = json.loads(captured.out.splitlines()[-1])
    assert last_event["event"] == "error" and message in last_event["message"]
    last_line = captured.err.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and message in last_line


def _break(job_root: Path, breakage: str) -> None:
    model = job_root / "refined" / "global" / "refined_sfm_combined"
    video = next((job_root / "datasets").glob("*/Frames.mp4"))
    if breakage == "no_datasets":
        for path in (job_root / "datasets").rglob("*"):
            if path.is_file():
                path.unlink()
        for path in sorted((job_root / "datasets").iterdir()):
            path.rmdir()
    elif breakage == "no_images_bin":
        (model / "images.bin").unlink()
    elif breakage == "corrupt_images_bin":
        data = (model / "images.bin").read_bytes()
        (model / "images.bin").write_bytes(data[: len(data) // 2])
    elif breakage == "truncated_video":
        data = video.read_bytes()
        video.write_bytes(data[: len(data) // 3])
    elif breakage == "not_a_video":
        video.write_bytes(b"not a video at all")


def test_bad_preview_size_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    make_tiny_job(tmp_path)
    assert main(["run", "--job-root", str(tmp_path), "--preview-size", "63x36"]) == 1
    assert "width must be an even number" in capsys.readouterr().err


@pytest.fixture
def training_child(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    make_tiny_job(tmp_path)
    child = run_child(tmp_path, "--steps", "100000", "--no-preview", "--threads", "1")
    yield child
    if child.poll() is None:
        child.kill()
        child.communicate()


def test_sigterm_ends_the_run_cleanly_with_code_143(
    tmp_path: Path, training_child: subprocess.Popen[str]
) -> None:
    assert training_child.stdout is not None
    for line in training_child.stdout:  # wait until training is under way
        if json.loads(line).get("stage") == "train" and "step" in line:
            break
    training_child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while training_child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    result = finish(tmp_path, training_child)
    assert result.returncode == 128 + signal.SIGTERM
    # #10: the step in hand is finished and checkpointed before the exit.
    step = result.events[-1]["checkpoint_step"]
    message = f"terminated by SIGTERM (checkpoint at step {step})"
    assert result.events[-1] == {
        "event": "error", "stage": "train", "message": message, "checkpoint_step": step,
    }  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert not [p for p in tmp_path.rglob("*") if "partial" in p.name]
