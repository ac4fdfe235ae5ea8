"""``python -m pipeline run --trainer nerfstudio`` end to end on a tiny synthetic job, with fake
``ns-train`` / ``ns-export`` on PATH (:mod:`tests.pipeline.train.fake_nerfstudio`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.contract import JobLayout
from pipeline.export import read_ply, read_splat
from pipeline.export.rotate import NERFSTUDIO_TO_OUTPUT
from pipeline.train.nerfstudio_cli import NerfstudioRun, ns_export_argv, ns_train_argv
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.pipeline.train import fake_nerfstudio
from tests.support.splats import random_splats
from tests.support.waiting import alive, eventually_sync

PROJECT_ROOT = Path(__file__).resolve().parents[3]
GAUSSIANS = 25


@dataclass
class Setup:
    job_root: Path
    env: dict[str, str]
    record: Path
    ns_means: np.ndarray


def make_setup(root: Path) -> Setup:
    job_root = root / "job"
    make_tiny_job(job_root)
    fake_nerfstudio.install(root / "bin")
    splats = random_splats(GAUSSIANS, seed=5)
    names = ("means", "quats", "log_scales", "logit_opacities", "sh")
    arrays = {n: t.numpy() for n, t in zip(names, splats.tensors(), strict=True)}
    fake_nerfstudio.save_splats(root / "splats.npz", **arrays)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_NS_RECORD": str(root / "calls.jsonl"),
        "FAKE_NS_SPLATS": str(root / "splats.npz"),
        **fake_nerfstudio.PASS_KNOBS,
    }
    return Setup(job_root, env, root / "calls.jsonl", arrays["means"].astype(np.float64))


def start(setup: Setup, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pipeline", "run", "--job-root", str(setup.job_root)]
    command += ["--trainer", "nerfstudio", "--no-preview", "--threads", "1", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=setup.env
    )


@dataclass
class Finished:
    setup: Setup
    returncode: int
    events: list[dict[str, Any]]
    stderr: str


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    setup = make_setup(tmp_path_factory.mktemp("nsrun"))
    child = start(setup, "--steps", "2000")
    stdout, stderr = child.communicate(timeout=300)
    events = [json.loads(line) for line in stdout.splitlines()]  # stdout is only JSON lines
    return Finished(setup, child.returncode, events, stderr)


def test_run_succeeds_with_the_reference_commands(finished: Finished) -> None:
    assert finished.returncode == 0, finished.stderr
    run = NerfstudioRun.for_job(JobLayout(finished.setup.job_root))
    calls = [json.loads(line) for line in finished.setup.record.read_text().splitlines()]
    assert calls == [
        {"tool": "ns-train", "argv": ns_train_argv(run, 2000)[1:]},
        {"tool": "ns-export", "argv": ns_export_argv(run)[1:]},
    ]


def test_run_reports_stages_and_training_progress(finished: Finished) -> None:
    stages = [(e["stage"], e["status"]) for e in finished.events if e["event"] == "stage"]
    assert stages == [
        ("frames", "started"), ("frames", "completed"), ("dataset", "started"),
        ("dataset", "completed"), ("train", "started"), ("train", "completed"),
        ("export", "started"), ("export", "completed"), ("preview", "skipped"),
    ]  # fmt: skip
    train = [e for e in finished.events if e["event"] == "progress" and e["stage"] == "train"]
    assert train[0]["step"] == 0 and train[0]["total"] == 2000
    assert train[-1]["step"] == 2000 and train[-1]["pct"] == 100.0
    completed = next(e for e in finished.events if e.get("status") == "completed" and
                     e["stage"] == "train")  # fmt: skip
    assert completed["trainer"] == "nerfstudio" and completed["gaussians"] == GAUSSIANS
    dataset = next(e for e in finished.events if e.get("status") == "completed" and
                   e["stage"] == "dataset")  # fmt: skip
    assert dataset["downscale"] == 1  # 64x48 frames: nerfstudio trains them as they are


def test_run_writes_the_outputs_in_the_reference_frames(finished: Finished) -> None:
    done = finished.events[-1]
    splatter = finished.setup.job_root / "refined" / "splatter"
    for name in ("splat.ply", "splat_rot.ply", "splat_rot.splat"):
        assert done["outputs"][name] == str(splatter / name)
    ns_means = finished.setup.ns_means
    np.testing.assert_allclose(
        read_ply(splatter / "splat.ply").splats.means.double().numpy(), ns_means, atol=1e-6
    )
    expected = ns_means @ NERFSTUDIO_TO_OUTPUT.T  # what rotate_ply.py does to ns-export's file
    rotated = read_ply(splatter / "splat_rot.ply").splats.means.double().numpy()
    np.testing.assert_allclose(rotated, expected, atol=1e-6)
    positions = read_splat(splatter / "splat_rot.splat").positions.astype(np.float64)
    order = np.lexsort(positions.T)
    np.testing.assert_allclose(positions[order], expected[np.lexsort(expected.T)], atol=1e-6)


def test_transforms_json_points_at_the_extracted_frames(finished: Finished) -> None:
    data_dir = finished.setup.job_root / "refined" / "nerfstudio-data"
    frames = json.loads((data_dir / "transforms.json").read_text())["frames"]
    frames_dir = (finished.setup.job_root / "Frames").resolve()
    resolved = [(data_dir / f["file_path"]).resolve() for f in frames]
    assert all(p.is_file() and p.parent == frames_dir for p in resolved)
    assert {p.name for p in resolved} == {p.name for p in frames_dir.iterdir()}


def test_without_nerfstudio_the_run_stops_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = JobLayout(tmp_path / "job")  # inputs that pass the first checks, nothing more
    (layout.datasets_dir / "scan").mkdir(parents=True)
    layout.model_dir.mkdir(parents=True)
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        (layout.model_dir / name).write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["run", "--job-root", str(layout.root), "--trainer", "nerfstudio"])
    message = (
        "nerfstudio trainer unavailable: ns-train not found on PATH "
        "(the GPU image installs it; use --trainer builtin)"
    )
    out, err = capsys.readouterr()
    assert code == 1 and err.splitlines()[-1] == f"error: {message}"
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "error", "stage": None, "message": message}
    ]
    assert not layout.frames_dir.exists()


# --- stopping --------------------------------------------------------------------------------


@contextlib.contextmanager
def hanging_training(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """The pipeline with an ``ns-train`` that sleeps (plus a forked worker in its group)."""
    setup = make_setup(tmp_path)
    pid_file = tmp_path / "ns-train.pids"
    setup.env["FAKE_NS_TRAIN_HANG"] = str(pid_file)
    child = start(setup)
    pids: list[int] = []
    try:
        eventually_sync(lambda: child.poll() is not None or pid_file.exists(), within_s=120)
        eventually_sync(lambda: len(pid_file.read_text().split()) == 2, within_s=5)
        pids = [int(p) for p in pid_file.read_text().split()]
        yield child, pids[0], pids[1]
    finally:
        child.kill()
        child.communicate()
        for pid in pids:  # leftovers only when the test failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_ns_train_and_its_workers(tmp_path: Path) -> None:
    with hanging_training(tmp_path) as (child, trainer, worker):
        child.send_signal(signal.SIGTERM)
        stdout, _ = child.communicate(timeout=60)
        assert child.returncode == 143
        assert json.loads(stdout.splitlines()[-1])["message"] == "terminated by SIGTERM"
        eventually_sync(lambda: not alive(trainer) and not alive(worker), within_s=10)
