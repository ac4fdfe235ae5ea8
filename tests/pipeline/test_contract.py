"""The job contract: every event round-trips, bad lines are refused clearly, paths stay inside."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.contract import (
    EXPORT_FILES,
    PREVIEW_FILES,
    STAGES,
    DoneEvent,
    ErrorEvent,
    Event,
    EventError,
    JobLayout,
    MetricsEvent,
    ProgressEvent,
    StageEvent,
    WarningEvent,
    encode_event,
    event_dict,
    format_size,
    parse_event,
    parse_size,
)
from tests.app import stub_pipeline

EVERY_EVENT: list[Event] = [
    StageEvent(stage="frames", status="started"),
    StageEvent(
        stage="train",
        status="completed",
        duration_s=12.5,
        details={"steps": 300, "backend": "cpu", "metrics": {"psnr": 24.1}},
    ),
    StageEvent(stage="preview", status="skipped", reason="previews disabled"),
    ProgressEvent(
        stage="train", pct=50.0, step=150, total=300, loss=0.04, gaussians=5120, eta_s=None
    ),
    ProgressEvent(stage="preview", pct=10.0, eta_s=9.0, details={"frame": 1, "frames": 10}),
    MetricsEvent(psnr=24.1, ssim=0.81, views=3, step=200),
    WarningEvent(stage="preview", message="ffmpeg not found"),
    DoneEvent(
        outputs={"splat_rot.splat": "/jobs/t/refined/splatter/splat_rot.splat"},
        metrics={"psnr": 24.1, "gaussians": 5120.0},
        warnings=["no video"],
        duration_s=61.25,
    ),
    ErrorEvent(stage=None, message="terminated by SIGTERM"),
    ErrorEvent(stage="dataset", message="images.bin names 3 frames that Frames.mp4 lacks"),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: f"{e.event}")
def test_every_event_round_trips_through_one_json_line(event: Event) -> None:
    line = encode_event(event)
    assert "\n" not in line
    assert parse_event(line) == event
    assert json.loads(line) == event_dict(event)
    assert json.loads(line)["event"] == event.event


def test_every_kind_of_event_is_covered() -> None:
    assert {e.event for e in EVERY_EVENT} == {
        "stage",
        "progress",
        "metrics",
        "warning",
        "done",
        "error",
    }


def test_the_wire_form_is_flat_and_keeps_only_the_fields_given() -> None:
    event = ProgressEvent.of("frames", 40.0, frames=4, total=10)
    assert json.loads(encode_event(event)) == {
        "event": "progress",
        "stage": "frames",
        "pct": 40.0,
        "frames": 4,
        "total": 10,
    }
    assert event.details == {"frames": 4} and event.total == 10
    completed = StageEvent(stage="export", status="completed", duration_s=1.0, details={"n": 2})
    assert json.loads(encode_event(completed))["n"] == 2
    metrics = json.loads(encode_event(MetricsEvent(psnr=20.0, ssim=0.5, views=2)))
    assert metrics == {"event": "metrics", "stage": "train", "psnr": 20.0, "ssim": 0.5, "views": 2}
    done = json.loads(encode_event(DoneEvent(outputs={}, duration_s=1.0)))
    assert done == {
        "event": "done",
        "outputs": {},
        "metrics": {},
        "warnings": [],
        "duration_s": 1.0,
    }


def test_random_progress_events_round_trip() -> None:
    rng = random.Random(9)
    for _ in range(200):
        event = ProgressEvent.of(
            rng.choice(STAGES),
            rng.uniform(0, 100),
            step=rng.randrange(10**6),
            loss=rng.random(),
            extra=rng.choice([None, "x", 3, [1, 2], {"a": 1.5}]),
        )
        assert parse_event(encode_event(event)) == event


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("plain text", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"stage": "train"}', "unknown event kind None"),
        ('{"event": "finished"}', "unknown event kind 'finished'"),
        ('{"event": "stage", "stage": "train", "status": "completed"}', "needs duration_s"),
        ('{"event": "stage", "stage": "train", "status": "skipped"}', "needs a reason"),
        ('{"event": "stage", "stage": "bake", "status": "started"}', "stage"),
        ('{"event": "progress", "stage": "train", "pct": 101}', "pct"),
        ('{"event": "progress", "stage": "train", "pct": NaN}', "pct"),
        ('{"event": "progress", "stage": "train", "pct": 5, "step": "two"}', "step"),
        ('{"event": "metrics", "psnr": 20.0, "views": 2}', "ssim"),
        ('{"event": "warning", "stage": "preview"}', "message"),
        ('{"event": "done", "outputs": {"a": 1}, "duration_s": 1}', "outputs.a"),
        ('{"event": "done", "outputs": {}, "duration_s": 1, "extra": 1}', "extra"),
        ('{"event": "error", "message": "x"}', "stage"),
    ],
)
def test_bad_lines_raise_an_event_error_that_says_why(line: str, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(line)
    assert reason in str(caught.value)


def test_non_finite_values_are_refused_before_they_reach_the_wire() -> None:
    with pytest.raises(EventError, match="loss"):
        ProgressEvent.of("train", 5.0, loss=float("nan"))


def test_the_stub_pipeline_writes_the_contracts_stages() -> None:
    assert tuple(s for s in STAGES if s != "sfm") == stub_pipeline.STAGES  # a job has no SfM


def test_sizes_are_read_one_way_and_written_back_the_same() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size(" 640 X 360 ") == (640, 360)
    assert format_size(*parse_size("64x48")) == "64x48"
    for bad in ["", "big", "1280", "1280x", "x720", "12.5x3", "-4x4", "4x4x4"]:
        with pytest.raises(ValueError, match="expected WIDTHxHEIGHT"):
            parse_size(bad)


def test_output_names_are_distinct() -> None:
    names = [*EXPORT_FILES, *PREVIEW_FILES]
    assert len(set(names)) == len(names)


def test_the_layout_follows_the_reference(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path / "task-1")
    assert layout.recording("scan") == tmp_path / "task-1/datasets/scan/Frames.mp4"
    assert layout.model_dir == tmp_path / "task-1/refined/global/refined_sfm_combined"
    assert layout.splat_file == tmp_path / "task-1/refined/splatter/splat_rot.splat"
    assert layout.frames_dir == tmp_path / "task-1/Frames"


def test_paths_inside_the_job_folder_are_accepted(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path / "job")
    layout.splatter_dir.mkdir(parents=True)
    assert layout.contains(layout.splat_file)
    assert layout.contains("refined/splatter/splat_rot.splat")
    assert layout.contains(layout.splatter_dir / ".." / "splatter" / "preview.mp4")
    assert layout.inside(str(layout.splat_file)) == layout.splat_file.resolve()


@pytest.mark.parametrize(
    "path",
    ["../other/splat_rot.splat", "refined/../../escape", "/etc/passwd", ".", ""],
)
def test_paths_outside_the_job_folder_are_refused(tmp_path: Path, path: str) -> None:
    layout = JobLayout(tmp_path / "job")
    layout.root.mkdir()
    assert not layout.contains(path)
    with pytest.raises(ValueError, match="outside the job folder"):
        layout.inside(path)


def test_a_symbolic_link_out_of_the_job_folder_is_refused(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path / "job")
    layout.splatter_dir.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    link = layout.splatter_dir / "splat_rot.splat"
    link.symlink_to(secret)
    assert not layout.contains(link)
    (layout.root / "out").symlink_to(tmp_path, target_is_directory=True)
    assert not layout.contains("out/secret.txt")


def test_the_contract_imports_neither_torch_nor_numpy() -> None:
    code = (
        "import sys, pipeline.contract; "
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"
