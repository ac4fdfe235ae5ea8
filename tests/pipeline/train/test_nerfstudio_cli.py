"""The ``nerfstudio`` trainer: exact commands, progress parsing, frames and failures, run against
fake ``ns-train`` / ``ns-export`` executables (:mod:`tests.pipeline.train.fake_nerfstudio`)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipeline.contract import JobLayout
from pipeline.errors import ExternalToolError, InputError, PlyFormatError, ToolUnavailableError
from pipeline.export import export_all, read_ply, read_splat
from pipeline.export.rotate import (
    COLMAP_TO_NERFSTUDIO,
    COLMAP_TO_OUTPUT,
    quat_to_matrix,
    rotate_splats,
)
from pipeline.splats import Splats
from pipeline.train.nerfstudio_cli import (
    NerfstudioRun,
    StepProgress,
    check_dataset,
    ns_export_argv,
    ns_train_argv,
    parse_step,
    train_with_nerfstudio,
)
from tests.pipeline.train import fake_nerfstudio
from tests.support.progress import RecordingProgress
from tests.support.splats import random_splats
from tests.support.waiting import alive, eventually_sync

# pipeline-reference.md §1.3 steps 3 and 4, verbatim.
REFERENCE_TRAIN = (
    "ns-train splatfacto --vis tensorboard --logging.local-writer.max-log-size 0 "
    "--logging.steps-per-log 1000 --data <job>/refined/nerfstudio-data --experiment-name "
    "splatter --method-name splatfacto --timestamp / --output-dir <job>/refined nerfstudio-data "
    "--center-method none --orientation-method none --auto-scale-poses False"
)
REFERENCE_EXPORT = (
    "ns-export gaussian-splat --load-config <job>/refined/splatter/splatfacto/config.yml "
    "--output-dir <job>/refined/splatter"
)


@dataclass
class Fakes:
    """The fake tools on PATH and what they recorded."""

    bin_dir: Path
    record: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def export_splats(self, splats: Splats, path: Path) -> None:
        """``ns-export`` will write these (taken to be in nerfstudio's frame)."""
        arrays = {
            name: t.detach().numpy() for name, t in zip(_NAMES, splats.tensors(), strict=True)
        }
        fake_nerfstudio.save_splats(path, **arrays)
        self.monkeypatch.setenv("FAKE_NS_SPLATS", str(path))


_NAMES = ("means", "quats", "log_scales", "logit_opacities", "sh")


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    bin_dir = tmp_path / "bin"
    fake_nerfstudio.install(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    record = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_NS_RECORD", str(record))
    monkeypatch.setenv("SPLATTER_CHILD_ENV", fake_nerfstudio.PASS_KNOBS["SPLATTER_CHILD_ENV"])
    return Fakes(bin_dir, record, monkeypatch)


@pytest.fixture
def job(tmp_path: Path) -> JobLayout:
    """A job folder with what ``ns-train`` reads: two frames and a transforms.json naming them."""
    layout = JobLayout(tmp_path / "job")
    layout.frames_dir.mkdir(parents=True)
    frames = []
    for name in ("scan_000000.jpg", "scan_000001.jpg"):
        (layout.frames_dir / name).write_bytes(b"jpeg")
        frames.append({"file_path": f"../../Frames/{name}", "transform_matrix": np.eye(4).tolist()})
    layout.nerfstudio_dir.mkdir(parents=True)
    (layout.nerfstudio_dir / "transforms.json").write_text(json.dumps({"frames": frames}))
    return layout


def reference_argv(template: str, job_root: Path) -> list[str]:
    return shlex.split(template.replace("<job>", str(job_root)))


# --- commands ---------------------------------------------------------------------------------


def test_train_command_is_the_reference_one_without_a_step_count(tmp_path: Path) -> None:
    run = NerfstudioRun.for_job(JobLayout(tmp_path))
    assert ns_train_argv(run) == reference_argv(REFERENCE_TRAIN, tmp_path)


def test_a_step_count_goes_with_the_method_options_before_the_dataparser(tmp_path: Path) -> None:
    expected = reference_argv(REFERENCE_TRAIN, tmp_path)
    at = expected.index("nerfstudio-data")
    expected[at:at] = ["--max-num-iterations", "500"]
    assert ns_train_argv(NerfstudioRun.for_job(JobLayout(tmp_path)), 500) == expected


def test_export_command_is_the_reference_one(tmp_path: Path) -> None:
    run = NerfstudioRun.for_job(JobLayout(tmp_path))
    assert ns_export_argv(run) == reference_argv(REFERENCE_EXPORT, tmp_path)
    assert run.config_path == tmp_path / "refined" / "splatter" / "splatfacto" / "config.yml"


# --- progress ---------------------------------------------------------------------------------


def test_parse_step_reads_only_progress_table_rows() -> None:
    assert (
        parse_step("1000 (3.33%)        41.342 ms            20 m, 40 s          1.12 M ") == 1000
    )
    assert parse_step("0 (0.00%)           ") == 0
    assert parse_step("29000 (96.67%)      40.1 ms") == 29000
    assert parse_step("Step (% Done)       Train Iter (time)    ETA (time)") is None
    assert parse_step("----------------------------------------") is None
    assert parse_step("[12:00:00] Saving config to: config.yml") is None
    assert parse_step("12 apples (fresh)") is None


def test_step_progress_reports_percent_and_measured_eta() -> None:
    sink, now = RecordingProgress(), [100.0]
    rows = StepProgress(sink, total=3000, clock=lambda: now[0])
    rows.feed("0 (0.00%)           41.342 ms")
    now[0] = 110.0
    rows.feed("not a row")
    rows.feed("1000 (33.33%)       41.342 ms")
    rows.finish()
    steps = [(e["step"], e["pct"], e["eta_s"]) for e in sink.events]
    # 1000 steps in 10 s: 2000 left take 20 s.
    assert steps == [(0, 0.0, None), (1000, pytest.approx(100 / 3), pytest.approx(20.0)),
                     (3000, 100.0, 0.0)]  # fmt: skip
    assert all(e["stage"] == "train" and e["total"] == 3000 for e in sink.events)


# --- running the tools ------------------------------------------------------------------------


def test_training_runs_both_tools_and_returns_the_gaussians_in_the_colmap_frame(
    fakes: Fakes, job: JobLayout, tmp_path: Path
) -> None:
    exported = random_splats(20, seed=3)  # what ns-export writes, nerfstudio's frame
    fakes.export_splats(exported, tmp_path / "splats.npz")
    sink = RecordingProgress()
    result = train_with_nerfstudio(job, steps=3000, progress=sink)

    run = NerfstudioRun.for_job(job)
    calls = fakes.calls()
    assert [c["tool"] for c in calls] == ["ns-train", "ns-export"]
    assert calls[0]["argv"] == ns_train_argv(run, 3000)[1:]
    assert calls[1]["argv"] == ns_export_argv(run)[1:]
    assert [e["step"] for e in sink.events] == [0, 1000, 2000, 3000]
    assert sink.events[-1]["pct"] == 100.0
    assert result.steps == 3000 and result.resumed_from is None

    A = COLMAP_TO_NERFSTUDIO
    means = exported.means.double().numpy()
    np.testing.assert_allclose(result.splats.means.double().numpy(), means @ A, atol=1e-6)
    expected_rot = A.T @ quat_to_matrix(exported.quats.double().numpy())
    np.testing.assert_allclose(quat_to_matrix(result.splats.quats.numpy()), expected_rot, atol=1e-5)
    torch.testing.assert_close(result.splats.log_scales, exported.log_scales)
    torch.testing.assert_close(result.splats.logit_opacities, exported.logit_opacities)
    torch.testing.assert_close(result.splats.sh[:, 0], exported.sh[:, 0])


def test_default_step_count_is_splatfactos(fakes: Fakes, job: JobLayout, tmp_path: Path) -> None:
    fakes.export_splats(random_splats(4), tmp_path / "splats.npz")
    sink = RecordingProgress()
    result = train_with_nerfstudio(job, progress=sink)
    assert "--max-num-iterations" not in fakes.calls()[0]["argv"]
    assert result.steps == 30000
    assert [e["step"] for e in sink.events] == [*range(0, 30000, 1000), 30000]


def test_a_gaussian_lands_at_the_same_output_position_whichever_trainer_made_it(
    fakes: Fakes, job: JobLayout, tmp_path: Path
) -> None:
    colmap = random_splats(30, seed=7, sh_degree=1)
    colmap.means[0] = torch.tensor([1.0, 2.0, 3.0])
    up = np.array([0.0, -1.0, 0.0])  # COLMAP: gravity along +y
    builtin = export_all(colmap, tmp_path / "builtin", up=up)
    # nerfstudio trains in A·COLMAP and exports there; the fake writes exactly that.
    fakes.export_splats(rotate_splats(colmap, COLMAP_TO_NERFSTUDIO), tmp_path / "splats.npz")
    trained = train_with_nerfstudio(job, steps=1000)
    ns = export_all(trained.splats, job.splatter_dir, up=up)

    rotated = read_ply(ns.rotated_ply).splats
    np.testing.assert_allclose(rotated.means[0].numpy(), [2.0, -1.0, 3.0], atol=1e-6)  # (y,-x,z)
    expected = colmap.means.double().numpy() @ COLMAP_TO_OUTPUT.T
    np.testing.assert_allclose(rotated.means.double().numpy(), expected, atol=1e-6)
    reference = read_ply(builtin.rotated_ply).splats
    np.testing.assert_allclose(rotated.means.numpy(), reference.means.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        quat_to_matrix(rotated.quats.numpy()), quat_to_matrix(reference.quats.numpy()), atol=1e-5
    )
    np.testing.assert_allclose(rotated.sh.numpy(), reference.sh.numpy(), atol=1e-5)
    ns_ply = read_ply(ns.splat_ply).splats.means.double().numpy()
    np.testing.assert_allclose(
        ns_ply, colmap.means.double().numpy() @ COLMAP_TO_NERFSTUDIO.T, atol=1e-6
    )
    ours, theirs = read_splat(ns.rotated_splat), read_splat(builtin.rotated_splat)
    np.testing.assert_allclose(ours.positions, theirs.positions, atol=1e-6)
    np.testing.assert_array_equal(ours.rgba, theirs.rgba)


# --- failures ---------------------------------------------------------------------------------


def test_missing_ns_train_says_to_use_the_builtin_trainer(
    job: JobLayout, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolUnavailableError) as info:
        train_with_nerfstudio(job)
    assert str(info.value) == (
        "nerfstudio trainer unavailable: ns-train not found on PATH "
        "(the GPU image installs it; use --trainer builtin)"
    )


def test_missing_ns_export_is_found_before_training(fakes: Fakes, job: JobLayout) -> None:
    (fakes.bin_dir / "ns-export").unlink()
    with pytest.raises(ToolUnavailableError, match="ns-export not found on PATH"):
        train_with_nerfstudio(job)
    assert fakes.calls() == []


def test_failed_training_reports_status_and_stderr_tail(
    fakes: Fakes, job: JobLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NS_TRAIN_EXIT", "3")
    with pytest.raises(ExternalToolError) as info:
        train_with_nerfstudio(job, steps=1000)
    assert str(info.value) == (
        "failed to train gaussian splat: ns-train exited with status 3 "
        "(stderr: Traceback (most recent call last): | RuntimeError: CUDA out of memory)"
    )
    assert info.value.returncode == 3
    assert [c["tool"] for c in fakes.calls()] == ["ns-train"]


def test_failed_export_reports_status_and_stderr_tail(
    fakes: Fakes, job: JobLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NS_EXPORT_EXIT", "2")
    with pytest.raises(ExternalToolError) as info:
        train_with_nerfstudio(job, steps=1000)
    assert str(info.value) == (
        "failed to export gaussian splat: ns-export exited with status 2 "
        "(stderr: ValueError: export failed)"
    )


def test_export_without_a_ply_is_an_error(
    fakes: Fakes, job: JobLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NS_EXPORT_OUTPUT", "none")
    with pytest.raises(ExternalToolError) as info:
        train_with_nerfstudio(job, steps=1000)
    ply = job.splatter_dir / "splat.ply"
    assert (
        str(info.value) == f"failed to export gaussian splat: ns-export exited 0 but wrote no {ply}"
    )


def test_a_stale_ply_does_not_pass_for_a_new_export(
    fakes: Fakes, job: JobLayout, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fakes.export_splats(random_splats(4), tmp_path / "splats.npz")
    train_with_nerfstudio(job, steps=1000)
    monkeypatch.setenv("FAKE_NS_EXPORT_OUTPUT", "none")
    with pytest.raises(ExternalToolError, match="wrote no"):
        train_with_nerfstudio(job, steps=1000)


def test_an_unreadable_ply_is_an_error(
    fakes: Fakes, job: JobLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NS_EXPORT_OUTPUT", "garbage")
    with pytest.raises(
        PlyFormatError, match=r"^failed to export gaussian splat: unusable splat\.ply: "
    ):
        train_with_nerfstudio(job, steps=1000)


def test_images_transforms_json_names_must_exist(fakes: Fakes, job: JobLayout) -> None:
    (job.frames_dir / "scan_000001.jpg").unlink()
    with pytest.raises(InputError) as info:
        train_with_nerfstudio(job, steps=1000)
    assert str(info.value) == (
        f"nerfstudio dataset unusable: images not found from {job.nerfstudio_dir}: "
        "../../Frames/scan_000001.jpg"
    )
    assert fakes.calls() == []


def test_missing_transforms_json_is_an_input_error(job: JobLayout) -> None:
    (job.nerfstudio_dir / "transforms.json").unlink()
    with pytest.raises(InputError, match=r"^nerfstudio dataset unusable: cannot read .*transforms"):
        check_dataset(job.nerfstudio_dir)


# --- stopping (SIGTERM through the CLI: tests/pipeline/commands/test_run_nerfstudio.py) --------


def test_ns_train_dies_with_a_parent_killed_outright(
    fakes: Fakes, job: JobLayout, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    argv = ns_train_argv(NerfstudioRun.for_job(job), 1000)
    argv[0] = str(fakes.bin_dir / "ns-train")
    parent_code = (
        "import sys; from pipeline.train.external_tool import run_tool; run_tool(sys.argv[1:])"
    )
    env = {
        **os.environ,
        "FAKE_NS_TRAIN_HANG": str(pid_file),
        **fake_nerfstudio.PASS_KNOBS,
        "PYTHONPATH": str(fake_nerfstudio.PROJECT_ROOT),
    }
    parent = subprocess.Popen([sys.executable, "-c", parent_code, *argv], env=env)
    pids: list[int] = []
    try:
        eventually_sync(
            lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, within_s=60
        )
        pids = [int(p) for p in pid_file.read_text().split()]
        parent.kill()  # SIGKILL: no handler runs, only PR_SET_PDEATHSIG can stop the child
        parent.wait()
        eventually_sync(lambda: not alive(pids[0]), within_s=10)
    finally:
        parent.kill()
        parent.wait()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
