"""The supervisor: the child's command line and environment, and stopping children at shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from app import PROJECT_ROOT
from app.worker.supervisor import WorkerSupervisor
from tests.app.factories import make_settings
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def test_the_command_appends_run_and_the_pipeline_options_to_pipeline_command(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path,
        pipeline_command="python3 -m pipeline",
        splatter_iterations=300,
        splatter_backend="cpu",
        splatter_threads=1,
        splatter_previews=False,
    )
    job_root = tmp_path / "tasks" / "t1"
    assert WorkerSupervisor(settings).command_for(job_root) == [
        "python3", "-m", "pipeline", "run", "--job-root", str(job_root),
        "--backend", "cpu", "--steps", "300", "--threads", "1", "--no-preview",
    ]  # fmt: skip


def test_preview_size_and_rate_are_passed_only_with_previews(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, pipeline_command="p", splatter_preview_size=" 640X360 ", splatter_preview_fps=15
    )
    assert WorkerSupervisor(settings).command_for(tmp_path)[4:] == [
        "--backend", "auto", "--preview-size", "640x360", "--preview-fps", "15",
    ]  # fmt: skip
    off = make_settings(tmp_path, pipeline_command="p", splatter_preview_size="640x360",
                        splatter_previews=False)  # fmt: skip
    assert WorkerSupervisor(off).command_for(tmp_path)[4:] == ["--backend", "auto", "--no-preview"]


def test_the_snapshot_interval_is_passed_when_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline_command="p", splatter_snapshot_secs=2.5)
    assert WorkerSupervisor(settings).command_for(tmp_path)[4:] == [
        "--backend", "auto", "--snapshot-every", "2.5",
    ]  # fmt: skip
    off = make_settings(tmp_path, pipeline_command="p", splatter_snapshot_secs=0)
    assert WorkerSupervisor(off).command_for(tmp_path)[-2:] == ["--snapshot-every", "0"]


def test_sog_off_is_passed_as_no_sog(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline_command="p", splatter_convert_to_sog=False)
    assert WorkerSupervisor(settings).command_for(tmp_path)[4:] == [
        "--backend", "auto", "--no-sog",
    ]  # fmt: skip


def test_the_nerfstudio_trainer_is_passed_next_to_the_backend(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pipeline_command="p", splatter_trainer="nerfstudio")
    assert WorkerSupervisor(settings).command_for(tmp_path)[4:] == [
        "--backend", "auto", "--trainer", "nerfstudio",
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="'builtin' or 'nerfstudio'"):
        make_settings(tmp_path, splatter_trainer="lichtfeld")


def test_a_capture_is_trained_with_train_and_without_the_trainer_option(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, pipeline_command="p", splatter_trainer="nerfstudio", splatter_iterations=9
    )
    capture, out = tmp_path / "capture" / "room.mp4", tmp_path / "out"
    assert WorkerSupervisor(settings).command_for(out, capture) == [
        "p", "train", str(capture), "--out", str(out), "--backend", "auto", "--steps", "9",
    ]  # fmt: skip


@pytest.mark.parametrize("size", ["640", "641x360", "8x8", "axb"])
def test_a_bad_preview_size_names_the_rule(tmp_path: Path, size: str) -> None:
    with pytest.raises(ValidationError, match="must be WIDTHxHEIGHT, even numbers of at least 16"):
        make_settings(tmp_path, splatter_preview_size=size)


def test_the_default_command_is_this_interpreter_running_the_pipeline_package(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, pipeline_command="")
    argv = WorkerSupervisor(settings).command_for(tmp_path)
    assert argv[:6] == [sys.executable, "-m", "pipeline", "run", "--job-root", str(tmp_path)]
    assert argv[6:] == ["--backend", "auto"]


async def test_the_child_runs_from_the_project_root_with_it_first_on_pythonpath(
    tmp_path: Path,
) -> None:
    record = tmp_path / "args.json"
    supervisor = WorkerSupervisor(make_settings(tmp_path, f"record-args:{record}"))
    outcome = await supervisor.run_pipeline(tmp_path / "job", asyncio.Event(), lambda e: None)
    assert outcome.succeeded
    seen = json.loads(record.read_text())
    assert seen["pythonpath"].split(":")[0] == str(PROJECT_ROOT)
    assert seen["cwd"] == str(PROJECT_ROOT)
    assert seen["unbuffered"] == "1"
    assert seen["argv"][-4:] == ["--job-root", str(tmp_path / "job"), "--backend", "auto"]


def test_check_command_names_a_missing_program(tmp_path: Path) -> None:
    missing = make_settings(tmp_path, pipeline_command=f"{tmp_path}/nope -m pipeline")
    assert WorkerSupervisor(missing).check_command() == (
        f"pipeline command not found or not executable: {tmp_path}/nope"
    )
    assert WorkerSupervisor(make_settings(tmp_path)).check_command() is None


async def test_shutdown_stops_running_children_and_refuses_new_ones(tmp_path: Path) -> None:
    started = tmp_path / "started"
    supervisor = WorkerSupervisor(make_settings(tmp_path, f"touch:{started}", "sleep:60"))
    run = asyncio.create_task(supervisor.run_pipeline(tmp_path, asyncio.Event(), lambda e: None))
    await eventually(started.exists)
    assert supervisor.running_children == 1
    begin = time.monotonic()
    await supervisor.shutdown()
    outcome = await run
    assert outcome.cancelled and time.monotonic() - begin < 5
    assert supervisor.running_children == 0
    with pytest.raises(RuntimeError, match="shutting down"):
        await supervisor.run_pipeline(tmp_path, asyncio.Event(), lambda e: None)


async def test_the_child_runs_at_a_lower_cpu_priority(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    supervisor = WorkerSupervisor(
        make_settings(tmp_path, f"pid:{pidfile}", "sleep:30", pipeline_nice=7)
    )
    cancel = asyncio.Event()
    run = asyncio.create_task(supervisor.run_pipeline(tmp_path, cancel, lambda e: None))
    await eventually(pidfile.exists)
    child_nice = os.getpriority(os.PRIO_PROCESS, int(pidfile.read_text()))
    cancel.set()
    await run
    assert child_nice == os.getpriority(os.PRIO_PROCESS, 0) + 7
