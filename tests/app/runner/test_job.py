"""The runner on the real domain client against the emulated domain server (loopback HTTP).

Progress sequence, uploads, bad input, cleanup, cancel, metrics. Each test builds the task
context the push door builds (``DomainPushContexts``) and records what the runner reports.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from app.metrics import NodeMetrics
from app.runner import JobCancelledError, SplatterJobError, run_splatter_job
from domain_client import RetryPolicy
from emulator import EmulatorServer
from tests.app.domains import (
    SUFFIX,
    RecordedContext,
    domain_uploads,
    emulated_scene,
    emulator_seed,
    push_context,
    seed_refined_scene,
    stored,
)
from tests.app.factories import make_settings
from tests.support.emulator import StartEmulator
from tests.support.waiting import alive

pytestmark = pytest.mark.anyio

PREVIEWS = {
    "uploaded_previews": [f"refined_splat_preview_top{SUFFIX}",
                          f"refined_splat_preview_angle{SUFFIX}"],
    "uploaded_preview_video": f"refined_splat_preview_video{SUFFIX}",
}  # fmt: skip


@pytest.fixture
def job(emulator: EmulatorServer, http: httpx.AsyncClient) -> RecordedContext:
    """A task over a fresh refined scene."""
    return push_context(emulator, http, emulated_scene(emulator))


def manifest_only(
    emulator: EmulatorServer, http: httpx.AsyncClient, manifest: bytes
) -> RecordedContext:
    """A task whose input is a refined manifest with this content, in an otherwise empty domain."""
    domain_id = str(uuid.uuid4())
    seed = emulator_seed(emulator, domain_id)
    scene = seed_refined_scene(seed, domain_id, emulator.domain_server_url, colmap=())
    manifest_id = seed(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest)
    return push_context(emulator, http, scene, [scene.cid_of(manifest_id)])


async def test_a_successful_run_reports_the_v1_progress_sequence_monotonically(
    tmp_path: Path, job: RecordedContext
) -> None:
    settings = make_settings(tmp_path, "progress:40", "write-outputs")
    await run_splatter_job(job.context, settings)
    progress = job.reporter.progress
    root = str(settings.tasks_root / job.task_id)
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
        "frames", "dataset", "train", "export", "preview", "report",
    }  # fmt: skip
    training = [p for p in running if "step" in p]
    assert training and all(35 <= p["pct"] <= 80 for p in running)
    assert {"step", "total", "loss", "gaussians", "eta_s", "stage_pct"} <= set(training[-1])
    python_done = next(p for p in progress if p.get("status") == "completed")
    assert python_done["pct"] == 80 and python_done["stage"] == "python"
    uploads = [p for p in progress if p.get("stage") == "upload"]
    assert [p["pct"] for p in uploads] == [90, 92, 95]
    names = {"uploaded_splat": f"refined_splat{SUFFIX}", **PREVIEWS}
    assert uploads[2] == {"pct": 95, "stage": "upload", "status": "completed", **names}
    assert progress[-1] == {"progress": 100, "stage": "complete", "status": "succeeded", **names}
    pcts = [p["pct"] if "pct" in p else p["progress"] for p in progress]
    assert pcts == sorted(pcts)


async def test_events_follow_the_reference_messages_in_order(
    tmp_path: Path, job: RecordedContext
) -> None:
    await run_splatter_job(job.context, make_settings(tmp_path, "progress:3", "write-outputs"))
    messages = [m for m in job.reporter.messages() if not m.startswith(("pipeline", "training"))]
    assert messages == [
        "workspace prepared",
        "inputs materialized",
        "python pipeline starting",
        "python pipeline completed",
        "output uploaded",
        "all outputs uploaded",
    ]
    # protocol §3.7: `output uploaded` (+`uploaded`), with level and stage like every event
    uploaded = next(e for e in job.reporter.events if e["message"] == "output uploaded")
    assert uploaded == {
        "level": "info", "stage": "upload", "message": "output uploaded",
        "uploaded": f"refined_splat{SUFFIX}",
    }  # fmt: skip
    stages = [e for e in job.reporter.events if e["message"] == "pipeline stage completed"]
    assert [e["pipeline_stage"] for e in stages] == [
        "frames", "dataset", "train", "export", "preview", "report",
    ]  # fmt: skip
    assert job.reporter.events[0]["task_id"] == job.task_id


async def test_outputs_land_on_the_domain_server_with_the_outputs_prefix(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    job = push_context(emulator, http, scene, outputs_prefix="/out/")
    await run_splatter_job(job.context, make_settings(tmp_path, "write-outputs"))
    artifacts = job.context.storage.artifacts()
    assert [(a.logical_path, a.name, a.data_type) for a in artifacts] == [
        (f"out/refined_splat{SUFFIX}", f"refined_splat{SUFFIX}", "splat_data"),
        (f"out/refined_splat_preview_angle{SUFFIX}", f"refined_splat_preview_angle{SUFFIX}",
         "splat_preview_angle"),
        (f"out/refined_splat_preview_top{SUFFIX}", f"refined_splat_preview_top{SUFFIX}",
         "splat_preview_top"),
        (f"out/refined_splat_preview_video{SUFFIX}", f"refined_splat_preview_video{SUFFIX}",
         "splat_preview_video"),
    ]  # fmt: skip
    items = stored(emulator, scene.domain_id)
    assert items[(f"refined_splat{SUFFIX}", "splat_data")] == b"\x01" * 64
    assert items[(f"refined_splat_preview_top{SUFFIX}", "splat_preview_top")] == b"top-jpeg"
    # files are streamed: the chunked upload API, never a whole-file single request
    assert all("/data/multipart" in upload for upload in domain_uploads(emulator))


async def test_missing_previews_are_skipped_and_the_job_succeeds(
    tmp_path: Path, job: RecordedContext
) -> None:
    await run_splatter_job(job.context, make_settings(tmp_path, "write-splat"))
    assert [a.data_type for a in job.context.storage.artifacts()] == ["splat_data"]
    assert job.reporter.progress[-1]["uploaded_previews"] == []
    assert job.reporter.progress[-1]["uploaded_preview_video"] is None


async def test_a_refused_preview_upload_is_logged_and_does_not_fail_the_job(
    tmp_path: Path, start_emulator: StartEmulator, http: httpx.AsyncClient
) -> None:
    emulator = start_emulator(domain_data_max_bytes=100)  # the stub's video has 144 bytes
    job = push_context(emulator, http, emulated_scene(emulator))
    await run_splatter_job(job.context, make_settings(tmp_path, "write-outputs"))
    final = job.reporter.progress[-1]
    assert final["uploaded_preview_video"] is None and len(final["uploaded_previews"]) == 2
    warning = next(e for e in job.reporter.events if e["level"] == "warn")
    assert warning["message"].startswith("preview upload failed: ")
    assert "413" in warning["message"]
    assert warning["artifact"] == f"refined_splat_preview_video{SUFFIX}"


async def test_the_sog_goes_up_before_the_splat_as_splat_data_sog(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    job = push_context(emulator, http, scene)
    await run_splatter_job(job.context, make_settings(tmp_path, "write-sog", "write-splat"))
    artifacts = job.context.storage.artifacts()
    assert [(a.name, a.data_type) for a in artifacts] == [
        (f"refined_splat{SUFFIX}", "splat_data"),
        (f"refined_splat_sog{SUFFIX}", "splat_data_sog"),
    ]
    assert stored(emulator, scene.domain_id)[(f"refined_splat_sog{SUFFIX}", "splat_data_sog")] == (
        b"sog-zip" * 20
    )
    messages = [e["message"] for e in job.reporter.events]
    assert messages.index("SOG compressed splat uploaded") < messages.index("output uploaded")


async def test_no_sog_upload_when_convert_to_sog_is_off(
    tmp_path: Path, job: RecordedContext
) -> None:
    settings = make_settings(tmp_path, "write-sog", "write-splat", splatter_convert_to_sog=False)
    await run_splatter_job(job.context, settings)
    assert [a.data_type for a in job.context.storage.artifacts()] == ["splat_data"]
    root = settings.tasks_root / job.task_id
    assert not (root / "refined/splatter/splat_rot.sog").exists()  # --no-sog reached the child


async def test_a_refused_sog_upload_is_a_warning_and_the_splat_still_goes_up(
    tmp_path: Path, start_emulator: StartEmulator, http: httpx.AsyncClient
) -> None:
    emulator = start_emulator(domain_data_max_bytes=100)  # the stub's SOG has 140 bytes
    job = push_context(emulator, http, emulated_scene(emulator))
    await run_splatter_job(job.context, make_settings(tmp_path, "write-sog", "write-splat"))
    assert [a.data_type for a in job.context.storage.artifacts()] == ["splat_data"]
    warning = next(e for e in job.reporter.events if e["level"] == "warn")
    assert warning["message"].startswith("SOG upload failed: ") and "413" in warning["message"]
    assert warning["artifact"] == f"refined_splat_sog{SUFFIX}"
    assert job.reporter.progress[-1]["uploaded_splat"] == f"refined_splat{SUFFIX}"


async def test_a_refused_splat_upload_fails_the_job_naming_path_and_artifact(
    tmp_path: Path, start_emulator: StartEmulator, http: httpx.AsyncClient
) -> None:
    emulator = start_emulator(domain_data_max_bytes=32)  # the splat has 64 bytes
    job = push_context(emulator, http, emulated_scene(emulator))
    settings = make_settings(tmp_path, "write-outputs")
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, settings)
    splat = settings.tasks_root / job.task_id / "refined/splatter/splat_rot.splat"
    assert str(failure.value) == f"upload {splat} as refined_splat{SUFFIX}"
    assert "413" in job.reporter.events[-1]["cause"]
    assert job.context.storage.artifacts() == []


async def test_a_rerun_replaces_the_existing_artifact_by_id(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    old = emulator.state.seed_data(scene.domain_id, f"refined_splat{SUFFIX}", "splat_data", b"old")
    job = push_context(emulator, http, scene)
    await run_splatter_job(job.context, make_settings(tmp_path, "write-splat"))
    assert job.context.storage.artifacts()[0].id == old.id
    assert emulator.state.read_data(scene.domain_id, old.id) == b"\x01" * 64
    splats = [i for i in emulator.state.data_items(scene.domain_id) if i.data_type == "splat_data"]
    assert [i.id for i in splats] == [old.id]


async def test_a_manifest_entry_escaping_the_job_folder_is_refused(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    manifest = json.dumps({"dataIDs": ["refined_scan_2025-01-01_10-00-00", "../../x"]})
    job = manifest_only(emulator, http, manifest.encode())
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, make_settings(tmp_path))
    assert str(failure.value) == (
        'invalid dataIDs entry "../../x": a scan id must be a single folder name '
        "(it contains a path separator)"
    )
    requests = emulator.state.request_log("domain")
    assert len(requests) == 2  # only the manifest: its listing and its download
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("entry", ["refined_scan_..", "dmt_recording_..", "a\\b"])
async def test_other_unsafe_scan_ids_are_refused(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient, entry: str
) -> None:
    job = manifest_only(emulator, http, json.dumps({"dataIDs": [entry]}).encode())
    with pytest.raises(SplatterJobError, match="a scan id must be a single folder name"):
        await run_splatter_job(job.context, make_settings(tmp_path))


async def test_missing_colmap_binaries_warn_and_the_pipeline_fails_on_the_model(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    """Protocol §3.3 6c and §5 #16: V4's warning, not V3's hard error; all five or none."""
    scene = emulated_scene(emulator, colmap=("colmap_frames_bin", "colmap_images_bin"))
    job = push_context(emulator, http, scene)
    settings = make_settings(tmp_path, pipeline_command=f"{sys.executable} -m pipeline")
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, settings)
    assert str(failure.value).startswith("python job failed: status=Some(1)")
    assert "COLMAP model incomplete" in str(failure.value)
    warning = next(e for e in job.reporter.events if e["level"] == "warn")
    assert (warning["stage"], warning["message"]) == (
        "inputs",
        f"missing colmap binaries for suffix {SUFFIX}: "
        '["colmap_cameras_bin", "colmap_points3d_bin", "colmap_rigs_bin"]',
    )
    downloaded = {r.path.rsplit("/", 1)[-1] for r in emulator.state.request_log("domain")}
    assert scene.colmap_ids["colmap_frames_bin"] not in downloaded


@pytest.mark.parametrize("manifest", [b"[1, 2]", b'{"dataIDs": "not-a-list"}', b'"text"'])
async def test_json_that_is_no_manifest_object_means_no_datasets(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient, manifest: bytes
) -> None:
    job = manifest_only(emulator, http, manifest)
    with pytest.raises(SplatterJobError, match=r"^no datasets downloaded"):
        await run_splatter_job(job.context, make_settings(tmp_path))


async def test_a_missing_input_item_fails_as_materialize_cid(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    missing = "2b0d5f3e-1c1a-4d8e-9a55-0a6c9f1e2d3c"
    job = push_context(emulator, http, emulated_scene(emulator), [missing])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, make_settings(tmp_path))
    assert str(failure.value) == f"materialize cid {missing}"
    assert job.reporter.events[-1]["cause"] == "not found (404)"


async def test_failed_recording_downloads_are_counted_and_the_rest_goes_on(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    # every attempt of the client's retry policy meets a 502
    emulator.state.add_fault(
        "domain", 502, count=RetryPolicy().attempts, path_contains=scene.recording_by_id
    )
    job = push_context(emulator, http, scene)
    await run_splatter_job(job.context, make_settings(tmp_path, "write-splat"))
    inputs = job.reporter.progress[1]
    assert (inputs["datasets"], inputs["recording_failures"]) == (1, 1)


async def test_too_little_free_disk_fails_before_any_download(
    tmp_path: Path, emulator: EmulatorServer, job: RecordedContext
) -> None:
    settings = make_settings(tmp_path, min_free_disk_mb=1 << 40)
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, settings)
    message = str(failure.value)
    assert message.startswith("insufficient disk space: ")
    assert f"under {settings.tasks_root}, {1 << 40} MiB required (MIN_FREE_DISK_MB)" in message
    assert emulator.state.request_log("domain") == []


async def test_a_child_killed_by_sigkill_fails_with_the_signal_named(
    tmp_path: Path, job: RecordedContext
) -> None:
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, make_settings(tmp_path, "kill-self:KILL"))
    assert str(failure.value) == (
        "python job failed: status=None (killed by SIGKILL; the process may have run out of memory)"
    )
    failed = next(e for e in job.reporter.events if e["message"] == "python job failed")
    assert failed["status"] is None and failed["signal"] == "SIGKILL"


async def test_a_job_past_its_time_limit_fails_naming_the_limit_and_its_child_is_gone(
    tmp_path: Path, job: RecordedContext
) -> None:
    pid_file = tmp_path / "child.pid"
    settings = make_settings(tmp_path, f"pid:{pid_file}", "train-forever", job_timeout_secs=3.0)
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, settings)
    assert str(failure.value) == (
        "job timed out after 3 s (JOB_TIMEOUT_SECS); the pipeline was stopped"
    )
    assert pid_file.exists() and not alive(int(pid_file.read_text()))
    assert list(settings.tasks_root.iterdir()) == []  # a failed job: nothing kept


async def test_a_pipeline_command_that_cannot_start_fails_the_job(
    tmp_path: Path, job: RecordedContext
) -> None:
    settings = make_settings(tmp_path, pipeline_command=f"{tmp_path}/missing-python -m pipeline")
    with pytest.raises(SplatterJobError, match=r"^spawn .*missing-python"):
        await run_splatter_job(job.context, settings)


async def test_the_job_folder_is_removed_unless_cleanup_is_disabled(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "write-splat")
    await run_splatter_job(push_context(emulator, http, scene).context, settings)
    assert list(settings.tasks_root.iterdir()) == []
    with pytest.raises(SplatterJobError):
        await run_splatter_job(push_context(emulator, http, scene, []).context, settings)
    assert list(settings.tasks_root.iterdir()) == []
    kept = make_settings(tmp_path, "write-splat", disable_tasks_cleanup=True)
    job = push_context(emulator, http, scene)
    await run_splatter_job(job.context, kept)
    assert (kept.tasks_root / job.task_id / "refined/splatter/splat_rot.splat").exists()


async def test_a_cancel_flag_set_before_the_start_ends_the_job_without_requests(
    tmp_path: Path, emulator: EmulatorServer, job: RecordedContext
) -> None:
    job.context.cancelled.set()
    with pytest.raises(JobCancelledError, match=r"^task cancelled: before execution$"):
        await run_splatter_job(job.context, make_settings(tmp_path))
    assert emulator.state.request_log("domain") == []


async def test_cancel_during_a_download_interrupts_it(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    # the recording found by id answers only after 10 s
    fault = emulator.state.add_fault(
        "domain", None, delay_s=10.0, path_contains=scene.recording_by_id
    )
    job = push_context(emulator, http, scene)
    run = asyncio.create_task(run_splatter_job(job.context, make_settings(tmp_path)))
    for _ in range(500):
        if fault.remaining == 0:
            break
        await asyncio.sleep(0.01)
    job.context.cancelled.set()
    with pytest.raises(JobCancelledError, match=r"^task cancelled: downloading input recording$"):
        await asyncio.wait_for(run, timeout=2.0)


async def test_metrics_count_bytes_steps_and_stage_durations(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    job = push_context(emulator, http, scene)
    metrics = NodeMetrics()
    await run_splatter_job(
        job.context, make_settings(tmp_path, "progress:25", "write-outputs"), metrics=metrics
    )
    text = metrics.render().decode()
    downloaded = (
        len(b"video-by-id") + len(b"video-by-name") + sum(len(p.encode()) for p in scene.colmap_ids)
    )
    assert f"splatter_bytes_downloaded_total {float(downloaded)}" in text
    assert f"splatter_bytes_uploaded_total {float(64 + 8 + 10 + 144)}" in text
    assert "splatter_training_steps_total 25.0" in text
    for stage in ("inputs", "python", "upload", "job", "pipeline_train"):
        assert f'splatter_stage_duration_seconds_count{{stage="{stage}"}} 1.0' in text


async def test_uploads_are_the_files_the_done_event_lists(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    job = push_context(emulator, http, scene)
    listed = "splat_rot.splat=refined/splatter/listed.splat,preview_top.jpg=refined/top.jpg"
    settings = make_settings(
        tmp_path,
        "write-outputs",  # the usual files, then a later done event that names others
        "write:refined/splatter/listed.splat=listed splat",
        "write:refined/top.jpg=listed still",
        f"done:{listed}",
    )
    await run_splatter_job(job.context, settings)
    assert [a.data_type for a in job.context.storage.artifacts()] == [
        "splat_data",
        "splat_preview_top",
    ]
    items = stored(emulator, scene.domain_id)
    assert items[(f"refined_splat{SUFFIX}", "splat_data")] == b"listed splat"
    assert items[(f"refined_splat_preview_top{SUFFIX}", "splat_preview_top")] == b"listed still"
    assert job.reporter.progress[-1]["uploaded_preview_video"] is None


async def test_a_listed_splat_outside_the_job_folder_fails_the_job_and_uploads_nothing(
    tmp_path: Path, job: RecordedContext
) -> None:
    outside = tmp_path / "outside.splat"
    outside.write_bytes(b"not the job's")
    settings = make_settings(tmp_path, "write-outputs", f"done:splat_rot.splat={outside}")
    with pytest.raises(SplatterJobError, match=r"pipeline output splat_rot\.splat: .* is outside"):
        await run_splatter_job(job.context, settings)
    assert job.context.storage.artifacts() == []


async def test_a_listed_preview_outside_the_job_folder_is_skipped(
    tmp_path: Path, job: RecordedContext
) -> None:
    listed = "splat_rot.splat=refined/splatter/splat_rot.splat,preview.mp4=../../escape.mp4"
    settings = make_settings(tmp_path, "write-outputs", f"done:{listed}")
    await run_splatter_job(job.context, settings)
    assert [a.data_type for a in job.context.storage.artifacts()] == ["splat_data"]


async def test_the_quality_report_is_uploaded_after_the_previews_with_its_metrics(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient
) -> None:
    scene = emulated_scene(emulator)
    job = push_context(emulator, http, scene)
    await run_splatter_job(job.context, make_settings(tmp_path, "write-report", "write-outputs"))
    artifacts = [(a.name, a.data_type) for a in job.context.storage.artifacts()]
    assert artifacts[-1] == (f"refined_splat_report{SUFFIX}", "splat_report_json")
    report = json.loads(stored(emulator, scene.domain_id)[artifacts[-1]])
    assert report["quality"]["psnr"] == 24.5
    final = job.reporter.progress[-1]
    assert final["progress"] == 100 and final["uploaded_report"] == f"refined_splat_report{SUFFIX}"
    assert final["metrics"] == {
        "psnr": 24.5, "ssim": 0.81, "views": 3, "flat_psnr": 14.0, "gaussians": 1234,
    }  # fmt: skip


async def test_an_unreadable_report_is_uploaded_as_is_without_metrics(
    tmp_path: Path, job: RecordedContext
) -> None:
    await run_splatter_job(job.context, make_settings(tmp_path, "bad-report", "write-outputs"))
    final = job.reporter.progress[-1]
    assert final["uploaded_report"] == f"refined_splat_report{SUFFIX}"
    assert "metrics" not in final


async def test_a_refused_report_upload_does_not_fail_the_job(
    tmp_path: Path, start_emulator: StartEmulator, http: httpx.AsyncClient
) -> None:
    emulator = start_emulator(domain_data_max_bytes=100)  # the report has more than 100 bytes
    job = push_context(emulator, http, emulated_scene(emulator))
    await run_splatter_job(job.context, make_settings(tmp_path, "write-report", "write-splat"))
    final = job.reporter.progress[-1]
    assert "uploaded_report" not in final and final["metrics"]["psnr"] == 24.5
    warning = next(e for e in job.reporter.events if e["level"] == "warn")
    assert warning["artifact"] == f"refined_splat_report{SUFFIX}"
