"""The runner end to end on fakes: progress sequence, uploads, bad input, cleanup, cancel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.metrics import NodeMetrics
from app.runner import JobCancelledError, SplatterJobError, run_splatter_job
from tests.app.factories import make_settings
from tests.app.fakes import DomainRequest, FakeDomain, FakeDomainError, make_context
from tests.app.runner.scenes import SUFFIX, seed_refined_scene

pytestmark = pytest.mark.anyio


async def test_a_successful_run_reports_the_v1_progress_sequence_monotonically(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, "progress:40", "write-outputs")
    await run_splatter_job(ctx, settings)
    progress = ctx.reporter.progress
    root = str(settings.tasks_root / str(ctx.lease.task.id))
    assert progress[0] == {"pct": 5, "stage": "workspace", "status": "prepared", "job_root": root}
    assert progress[1] == {
        "pct": 20, "stage": "inputs", "status": "materialized", "datasets": 2,
        "metadata_chunks": 1, "metadata_items": 1, "recording_failures": 0,
        "colmap_downloaded": 5, "colmap_failed": 0,
    }  # fmt: skip
    assert progress[2]["pct"] == 35 and progress[2]["status"] == "starting"
    assert progress[2]["job_root_path"] == root and "run --job-root" in progress[2]["script"]
    running = [p for p in progress if p.get("status") == "running"]
    assert {p["pipeline_stage"] for p in running} == {
        "frames", "dataset", "train", "export", "preview",
    }  # fmt: skip
    training = [p for p in running if "step" in p]
    assert training and all(35 <= p["pct"] <= 80 for p in running)
    assert {"step", "total", "loss", "gaussians", "eta_s", "stage_pct"} <= set(training[-1])
    python_done = next(p for p in progress if p.get("status") == "completed")
    assert python_done["pct"] == 80 and python_done["stage"] == "python"
    uploads = [p for p in progress if p.get("stage") == "upload"]
    assert [p["pct"] for p in uploads] == [90, 92, 95]
    names = {
        "uploaded_splat": f"refined_splat{SUFFIX}",
        "uploaded_previews": [f"refined_splat_preview_top{SUFFIX}",
                              f"refined_splat_preview_angle{SUFFIX}"],
        "uploaded_preview_video": f"refined_splat_preview_video{SUFFIX}",
    }  # fmt: skip
    assert uploads[2] == {"pct": 95, "stage": "upload", "status": "completed", **names}
    assert progress[-1] == {"progress": 100, "stage": "complete", "status": "succeeded", **names}
    pcts = [p.get("pct", p.get("progress")) for p in progress]
    assert pcts == sorted(pcts)


async def test_events_follow_the_reference_messages_in_order(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "progress:3", "write-outputs"))
    messages = [m for m in ctx.reporter.messages() if not m.startswith(("pipeline", "training"))]
    assert messages == [
        "workspace prepared",
        "inputs materialized",
        "python pipeline starting",
        "python pipeline completed",
        "splat output uploaded",
        "all outputs uploaded",
    ]
    stages = [e for e in ctx.reporter.events if e["message"] == "pipeline stage completed"]
    assert [e["pipeline_stage"] for e in stages] == [
        "frames", "dataset", "train", "export", "preview",
    ]  # fmt: skip
    assert ctx.reporter.events[0]["task_id"] == str(ctx.lease.task.id)


async def test_artifacts_carry_the_outputs_prefix_and_are_uploaded_from_files(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid], outputs_prefix="/out/")
    await run_splatter_job(ctx, make_settings(tmp_path, "write-outputs"))
    assert [a.logical_path for a in ctx.storage.artifacts()] == sorted(
        f"out/{base}{SUFFIX}"
        for base in ("refined_splat", "refined_splat_preview_top",
                     "refined_splat_preview_angle", "refined_splat_preview_video")
    )  # fmt: skip
    uploads = scene.domain.requests_of("create")
    assert [r.params["content_kind"] for r in uploads] == ["path"] * 4


async def test_missing_previews_are_skipped_and_the_job_succeeds(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-splat"))
    assert [a.data_type for a in ctx.storage.artifacts()] == ["splat_data"]
    assert ctx.reporter.progress[-1]["uploaded_previews"] == []
    assert ctx.reporter.progress[-1]["uploaded_preview_video"] is None


async def test_a_failed_preview_upload_is_logged_and_does_not_fail_the_job(tmp_path: Path) -> None:
    scene = seed_refined_scene()

    def refuse_video(request: DomainRequest) -> None:
        if request.kind == "create" and request.params["data_type"] == "splat_preview_video":
            raise FakeDomainError("server error (503)")

    scene.domain.before_request = refuse_video
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-outputs"))
    assert ctx.reporter.progress[-1]["uploaded_preview_video"] is None
    assert len(ctx.reporter.progress[-1]["uploaded_previews"]) == 2
    warning = next(e for e in ctx.reporter.events if e["level"] == "warn")
    assert warning["message"] == "preview upload failed: server error (503)"


async def test_a_failed_splat_upload_fails_the_job_naming_path_and_artifact(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()

    def refuse_splat(request: DomainRequest) -> None:
        if request.kind == "create" and request.params["data_type"] == "splat_data":
            raise FakeDomainError("server error (500)")

    scene.domain.before_request = refuse_splat
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, "write-outputs")
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, settings)
    splat = settings.tasks_root / str(ctx.lease.task.id) / "refined/splatter/splat_rot.splat"
    assert str(failure.value) == f"upload {splat} as refined_splat{SUFFIX}"
    assert ctx.reporter.events[-1]["cause"] == "server error (500)"
    assert ctx.storage.artifacts() == []


async def test_a_rerun_replaces_the_existing_artifact_by_id(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    existing = scene.domain.add(f"refined_splat{SUFFIX}", "splat_data", b"old")
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-splat"))
    update = scene.domain.requests_of("update")
    assert [r.params["existing_id"] for r in update] == [existing]
    assert ctx.storage.artifacts()[0].id == existing


async def test_a_manifest_entry_escaping_the_job_folder_is_refused(tmp_path: Path) -> None:
    domain = FakeDomain()
    manifest = json.dumps({"dataIDs": ["refined_scan_2025-01-01_10-00-00", "../../x"]})
    cid = domain.add(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest.encode())
    ctx = make_context(domain, [cid])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path))
    assert str(failure.value) == (
        'invalid dataIDs entry "../../x": a scan id must be a single folder name '
        "(it contains a path separator)"
    )
    assert [r.kind for r in domain.requests] == ["list", "download"]  # only the manifest
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("entry", ["refined_scan_..", "dmt_recording_..", "a\\b"])
async def test_other_unsafe_scan_ids_are_refused(tmp_path: Path, entry: str) -> None:
    domain = FakeDomain()
    cid = domain.add("m", "refined_manifest_json", json.dumps({"dataIDs": [entry]}).encode())
    with pytest.raises(SplatterJobError, match="a scan id must be a single folder name"):
        await run_splatter_job(make_context(domain, [cid]), make_settings(tmp_path))


async def test_missing_colmap_binaries_fail_naming_the_suffix_and_what_is_missing(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene(colmap=("colmap_frames_bin", "colmap_images_bin"))
    ctx = make_context(scene.domain, [scene.cid])
    ran = tmp_path / "ran"
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path, f"touch:{ran}"))
    assert str(failure.value) == (
        f"missing required colmap binaries for suffix {SUFFIX}: "
        '["colmap_cameras_bin", "colmap_points3d_bin", "colmap_rigs_bin"]'
    )
    assert not ran.exists()
    assert scene.colmap_ids["colmap_frames_bin"] not in {
        r.params["data_id"] for r in scene.domain.requests_of("download")
    }  # all five or none, as the reference


@pytest.mark.parametrize("manifest", [b"[1, 2]", b'{"dataIDs": "not-a-list"}', b'"text"'])
async def test_json_that_is_no_manifest_object_means_no_datasets(
    tmp_path: Path, manifest: bytes
) -> None:
    domain = FakeDomain()
    cid = domain.add(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest)
    with pytest.raises(SplatterJobError, match=r"^no datasets downloaded"):
        await run_splatter_job(make_context(domain, [cid]), make_settings(tmp_path))


async def test_a_missing_input_item_fails_as_materialize_cid(tmp_path: Path) -> None:
    ctx = make_context(FakeDomain(), ["2b0d5f3e-1c1a-4d8e-9a55-0a6c9f1e2d3c"])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path))
    assert str(failure.value) == "materialize cid 2b0d5f3e-1c1a-4d8e-9a55-0a6c9f1e2d3c"
    assert ctx.reporter.events[-1]["cause"] == "not found (404)"


async def test_failed_recording_downloads_are_counted_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()

    def lose_the_recording_by_id(request: DomainRequest) -> None:
        if request.kind == "download" and request.params["data_id"] == scene.recording_by_id:
            raise FakeDomainError("server error (502)")

    scene.domain.before_request = lose_the_recording_by_id
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-splat"))
    inputs = ctx.reporter.progress[1]
    assert (inputs["datasets"], inputs["recording_failures"]) == (1, 1)


async def test_too_little_free_disk_fails_before_any_download(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, min_free_disk_mb=1 << 40)
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, settings)
    message = str(failure.value)
    assert message.startswith("insufficient disk space: ")
    assert f"under {settings.tasks_root}, {1 << 40} MiB required (MIN_FREE_DISK_MB)" in message
    assert scene.domain.requests == []


async def test_a_child_killed_by_sigkill_fails_with_the_signal_named(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path, "kill-self:KILL"))
    assert str(failure.value) == (
        "python job failed: status=None (killed by SIGKILL; the process may have run out of memory)"
    )
    failed = next(e for e in ctx.reporter.events if e["message"] == "python job failed")
    assert failed["status"] is None and failed["signal"] == "SIGKILL"


async def test_a_pipeline_command_that_cannot_start_fails_the_job(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, pipeline_command=f"{tmp_path}/missing-python -m pipeline")
    with pytest.raises(SplatterJobError, match=r"^spawn .*missing-python"):
        await run_splatter_job(ctx, settings)


async def test_the_job_folder_is_removed_unless_cleanup_is_disabled(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, "write-splat")
    await run_splatter_job(ctx, settings)
    assert list(settings.tasks_root.iterdir()) == []
    with pytest.raises(SplatterJobError):
        await run_splatter_job(make_context(scene.domain, []), settings)
    assert list(settings.tasks_root.iterdir()) == []
    kept = make_settings(tmp_path, "write-splat", disable_tasks_cleanup=True)
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, kept)
    assert (kept.tasks_root / str(ctx.lease.task.id) / "refined/splatter/splat_rot.splat").exists()


async def test_a_cancel_flag_set_before_the_start_ends_the_job_without_requests(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    ctx.cancelled.set()
    with pytest.raises(JobCancelledError, match=r"^task cancelled: before execution$"):
        await run_splatter_job(ctx, make_settings(tmp_path))
    assert scene.domain.requests == []


async def test_cancel_during_a_download_interrupts_it(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    stalled = asyncio.Event()
    original = scene.domain.download_raw

    async def stalling_download(data_id: str, dest: Path) -> int:
        if data_id == scene.recording_by_id:
            stalled.set()
            await asyncio.sleep(60)
        return await original(data_id, dest)

    scene.domain.download_raw = stalling_download  # type: ignore[method-assign]
    job = asyncio.create_task(run_splatter_job(ctx, make_settings(tmp_path)))
    await stalled.wait()
    ctx.cancelled.set()
    with pytest.raises(JobCancelledError, match=r"^task cancelled: downloading input recording$"):
        await asyncio.wait_for(job, timeout=2.0)


async def test_metrics_count_bytes_steps_and_stage_durations(tmp_path: Path) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    metrics = NodeMetrics()
    await run_splatter_job(
        ctx, make_settings(tmp_path, "progress:25", "write-outputs"), metrics=metrics
    )
    text = metrics.render().decode()
    downloaded = (
        len(b"video-by-id") + len(b"video-by-name") + sum(len(p.encode()) for p in scene.colmap_ids)
    )
    assert f"splatter_bytes_downloaded_total {float(downloaded)}" in text
    assert f"splatter_bytes_uploaded_total {float(64 + 8 + 10 + 9)}" in text
    assert "splatter_training_steps_total 25.0" in text
    for stage in ("inputs", "python", "upload", "job", "pipeline_train"):
        assert f'splatter_stage_duration_seconds_count{{stage="{stage}"}} 1.0' in text
