"""Mapping the pipeline's JSON-lines events onto the V1 progress JSON (35–80 %)."""

from __future__ import annotations

import itertools
from typing import Any

from app.runner.progress import PIPELINE_SPANS, PipelineProgressMapper
from pipeline.contract import event_from_dict


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def train(step: int, total: int = 100) -> dict[str, Any]:
    return {
        "event": "progress",
        "stage": "train",
        "pct": 100 * step / total,
        "step": step,
        "total": total,
        "loss": 0.1,
        "gaussians": 5000,
        "eta_s": total - step,
    }


def test_the_stage_spans_tile_35_to_80_in_pipeline_order() -> None:
    spans = list(PIPELINE_SPANS.values())
    assert spans[0][0] == 35 and spans[-1][1] == 80
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    widest = max(PIPELINE_SPANS, key=lambda s: PIPELINE_SPANS[s][1] - PIPELINE_SPANS[s][0])
    assert widest == "train"


def test_training_progress_carries_step_loss_and_eta_inside_the_train_span() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    mapper.on_event(event_from_dict({"event": "stage", "stage": "train", "status": "started"}))
    mapped = mapper.on_event(event_from_dict(train(50)))
    start, end = PIPELINE_SPANS["train"]
    assert mapped.progress == {
        "pct": int(start + (end - start) / 2), "stage": "python", "status": "running",
        "pipeline_stage": "train", "step": 50, "total": 100, "loss": 0.1, "gaussians": 5000,
        "eta_s": 50, "stage_pct": 50.0,
    }  # fmt: skip
    assert mapped.train_step == 50


def test_a_resumed_run_says_where_it_resumed_from_in_the_progress_json() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    mapped = mapper.on_event(event_from_dict({**train(60), "resumed_from": 40}))
    assert mapped.progress is not None and mapped.progress["resumed_from"] == 40
    assert "resumed_from" not in (mapper.on_event(event_from_dict(train(61))).progress or {})


def test_updates_inside_a_stage_are_throttled_but_stage_changes_are_not() -> None:
    clock = FakeClock()
    mapper = PipelineProgressMapper(min_interval_s=2.0, clock=clock)
    assert mapper.on_event(
        event_from_dict({"event": "stage", "stage": "train", "status": "started"})
    ).progress
    clock.now = 1.0
    assert mapper.on_event(event_from_dict(train(10))).progress is None
    clock.now = 2.5
    assert mapper.on_event(event_from_dict(train(20))).progress is not None
    clock.now = 2.6
    assert mapper.on_event(event_from_dict(train(30))).progress is None
    done = {"event": "stage", "stage": "train", "status": "completed", "duration_s": 3.5}
    mapped = mapper.on_event(event_from_dict(done))
    assert mapped.progress is not None and mapped.progress["pct"] == int(PIPELINE_SPANS["train"][1])
    assert mapped.stage_duration == ("train", 3.5)


def test_pct_never_decreases_even_when_events_go_backwards() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    seen = []
    for event in [
        {"event": "stage", "stage": "export", "status": "started"},
        {"event": "stage", "stage": "frames", "status": "started"},
        train(10),
        {"event": "progress", "stage": "dataset", "pct": 99},
        {"event": "stage", "stage": "report", "status": "completed", "duration_s": 1.0},
    ]:
        mapped = mapper.on_event(event_from_dict(event))
        if mapped.progress:
            seen.append(mapped.progress["pct"])
    assert seen == sorted(seen) and seen[-1] == 80


def test_warnings_metrics_and_stage_ends_become_job_events() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    warning = mapper.on_event(
        event_from_dict({"event": "warning", "stage": "preview", "message": "no ffmpeg"})
    )
    assert warning.events == [
        {"level": "warn", "stage": "python", "message": "no ffmpeg", "pipeline_stage": "preview"}
    ]
    metrics = mapper.on_event(
        event_from_dict(
            {"event": "metrics", "stage": "train", "psnr": 24.0, "ssim": 0.8, "views": 3}
        )
    )
    assert metrics.events == [
        {"level": "info", "stage": "python", "message": "training metrics", "psnr": 24.0,
         "ssim": 0.8, "views": 3}
    ]  # fmt: skip
    done = mapper.on_event(
        event_from_dict(
            {
                "event": "stage",
                "stage": "frames",
                "status": "completed",
                "duration_s": 1.0,
                "frames": 9,
            }
        )
    )
    assert done.events == [
        {"level": "info", "stage": "python", "message": "pipeline stage completed",
         "pipeline_stage": "frames", "duration_s": 1.0, "frames": 9}
    ]  # fmt: skip
    assert (
        mapper.on_event(
            event_from_dict({"event": "done", "outputs": {}, "duration_s": 1.0})
        ).progress
        is None
    )


def test_only_training_updates_carry_the_training_fields() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    preview = {"event": "progress", "stage": "preview", "pct": 60.0, "eta_s": 0.4, "frame": 3}
    mapped = mapper.on_event(event_from_dict(preview))
    assert mapped.progress is not None
    assert set(mapped.progress) == {"pct", "stage", "status", "pipeline_stage", "stage_pct"}


def test_a_snapshot_becomes_a_job_event_naming_its_file() -> None:
    mapper = PipelineProgressMapper(min_interval_s=0)
    event = {"event": "snapshot", "stage": "train", "file": "live.splat", "step": 40,
             "gaussians": 1234, "write_s": 0.01}  # fmt: skip
    mapped = mapper.on_event(event_from_dict(event))
    assert mapped.progress is None
    assert mapped.events == [
        {"level": "info", "stage": "python", "message": "training snapshot",
         "snapshot": "live.splat", "step": 40, "gaussians": 1234, "write_s": 0.01}
    ]  # fmt: skip
