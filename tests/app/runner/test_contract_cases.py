"""Protocol §4.11 cases 37–44: the splatter runner's input resolution, python step and uploads.

Written against the agreed TaskContext/TaskStorage surface with the fakes of tests/app/fakes.py
and a real stub pipeline child; at integration the fakes give way to respx and the real client.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from app.runner import JobCancelledError, SplatterJobError, run_splatter_job
from app.runner.progress import CANCELLED, PYTHON_FAILED
from tests.app.factories import make_settings
from tests.app.fakes import DomainRequest, FakeDomain, make_context
from tests.app.runner.scenes import SCAN_BY_ID, SCAN_BY_NAME, SUFFIX, seed_refined_scene
from tests.app.waiting import eventually

pytestmark = pytest.mark.anyio


def lists(domain: FakeDomain) -> list[dict[str, object]]:
    return [r.params for r in domain.requests_of("list")]


async def test_case_37_manifest_resolves_recordings_by_id_and_name_and_colmap_binaries(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, "write-outputs", disable_tasks_cleanup=True)
    await run_splatter_job(ctx, settings)

    recording_lookup = {"ids": None, "data_type": "dmt_recording_mp4"}
    assert {"ids": [scene.recording_by_id], "name": None, "data_type": None} in lists(scene.domain)
    assert {**recording_lookup, "name": f"dmt_recording_{SCAN_BY_NAME}"} in lists(scene.domain)
    assert {**recording_lookup, "name": f"dmt_recording_{SCAN_BY_NAME}.mp4"} not in lists(
        scene.domain
    )
    colmap_lookups = [p for p in lists(scene.domain) if str(p["name"]).startswith("colmap")]
    assert [p["name"] for p in colmap_lookups] == [
        f"colmap_{x}_bin{SUFFIX}" for x in ("frames", "images", "cameras", "points3d", "rigs")
    ]
    assert [p["data_type"] for p in colmap_lookups] == [None] * 5
    downloaded = {r.params["data_id"] for r in scene.domain.requests_of("download")}
    assert downloaded >= {scene.manifest_id, scene.recording_by_id, *scene.colmap_ids.values()}

    root = settings.tasks_root / str(ctx.lease.task.id)
    assert (root / "datasets" / SCAN_BY_ID / "Frames.mp4").read_bytes() == b"video-by-id"
    assert (root / "datasets" / SCAN_BY_NAME / "Frames.mp4").read_bytes() == b"video-by-name"
    colmap_dir = root / "refined" / "global" / "refined_sfm_combined"
    assert sorted(p.name for p in colmap_dir.iterdir()) == [
        "cameras.bin", "frames.bin", "images.bin", "points3D.bin", "rigs.bin",
    ]  # fmt: skip
    assert (colmap_dir / "points3D.bin").read_bytes() == b"colmap_points3d_bin"
    assert not (root / ".input").exists()  # the download root is gone once the manifest is read


async def test_case_37_the_mp4_name_is_tried_only_when_the_plain_name_finds_nothing(
    tmp_path: Path,
) -> None:
    domain = FakeDomain()
    domain.add("dmt_recording_2025-03-03_00-00-00.mp4", "dmt_recording_mp4", b"video")
    manifest = json.dumps({"dataIDs": ["refined_scan_2025-03-03_00-00-00"]}).encode()
    cid = domain.add("some_manifest", "refined_manifest_json", manifest)
    ctx = make_context(domain, [cid])
    settings = make_settings(tmp_path, "write-outputs", disable_tasks_cleanup=True)
    await run_splatter_job(ctx, settings)
    names = [p["name"] for p in lists(domain) if p["data_type"] == "dmt_recording_mp4"]
    assert names == [
        "dmt_recording_2025-03-03_00-00-00",
        "dmt_recording_2025-03-03_00-00-00.mp4",
    ]
    frames = settings.tasks_root / str(ctx.lease.task.id) / "datasets" / "2025-03-03_00-00-00"
    assert (frames / "Frames.mp4").read_bytes() == b"video"


async def test_case_38_a_manifest_without_recordings_fails_before_the_pipeline(
    tmp_path: Path,
) -> None:
    domain = FakeDomain()
    manifest = json.dumps({"dataIDs": [f"refined_scan_{SCAN_BY_NAME}"]}).encode()
    cid = domain.add(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest)
    ctx = make_context(domain, [cid])
    ran = tmp_path / "pipeline-ran"
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path, f"touch:{ran}"))
    assert str(failure.value) == (
        "no datasets downloaded; expected at least one dmt_recording_* input"
    )
    assert not ran.exists()
    assert ctx.reporter.events[-1] == {
        "level": "error", "stage": "runner", "message": str(failure.value),
    }  # fmt: skip


async def test_case_39_an_input_that_is_not_json_fails_with_the_cid_named(tmp_path: Path) -> None:
    domain = FakeDomain()
    cid = domain.add(f"refined_manifest{SUFFIX}", "refined_manifest_json", b"\x00not json{")
    ctx = make_context(domain, [cid])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path))
    assert str(failure.value) == f"parse input cid {cid} as JSON"


async def test_case_39_no_input_cid_fails_with_the_reference_message(tmp_path: Path) -> None:
    ctx = make_context(FakeDomain(), [])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path))
    assert str(failure.value) == "no input cid provided; cannot run splatter job"


async def test_case_40_a_pipeline_exiting_1_fails_after_the_python_failed_progress(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, make_settings(tmp_path, "stderr:boom", "exit:1"))
    assert str(failure.value) == "python job failed: status=Some(1)"
    assert ctx.reporter.progress[-1] == PYTHON_FAILED
    failed = next(e for e in ctx.reporter.events if e["message"] == "python job failed")
    assert failed["level"] == "error" and failed["status"] == 1
    assert failed["tail"] == ["stderr: boom"] and failed["stderr_lines"] == 1
    assert scene.domain.requests_of("create") == []


async def test_case_41_success_without_the_splat_file_fails_naming_the_path(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    settings = make_settings(tmp_path, "exit:0")
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(ctx, settings)
    expected = settings.tasks_root / str(ctx.lease.task.id) / "refined/splatter/splat_rot.splat"
    assert str(failure.value) == f"expected output missing: {expected}"


async def test_case_42_the_splat_is_uploaded_as_refined_splat_with_the_suffix(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-outputs"))
    splat = ctx.storage.artifacts()[0]
    assert (splat.logical_path, splat.name, splat.data_type) == (
        f"refined_splat{SUFFIX}", f"refined_splat{SUFFIX}", "splat_data",
    )  # fmt: skip
    meta, content = scene.domain.items[str(splat.id)]
    assert (meta.name, meta.data_type, content) == (splat.name, "splat_data", b"\x01" * 64)


async def test_case_42_an_input_without_the_manifest_prefix_uploads_plain_refined_splat(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene(manifest_name="dmt_manifest_2024-01-02_03-04-05", colmap=())
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-outputs"))
    assert [(a.name, a.data_type) for a in ctx.storage.artifacts()] == [
        ("refined_splat", "splat_data"),
        ("refined_splat_preview_angle", "splat_preview_angle"),
        ("refined_splat_preview_top", "splat_preview_top"),
        ("refined_splat_preview_video", "splat_preview_video"),
    ]
    assert not any(str(p["name"]).startswith("colmap_") for p in lists(scene.domain))


async def test_case_43_cancel_while_the_pipeline_runs_stops_it_and_removes_the_folder(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    ctx = make_context(scene.domain, [scene.cid])
    pidfile = tmp_path / "child.pid"
    settings = make_settings(tmp_path, f"pid:{pidfile}", "sleep:60", cancel_grace_secs=5.0)
    job = asyncio.create_task(run_splatter_job(ctx, settings))
    await eventually(pidfile.exists)
    ctx.cancelled.set()
    with pytest.raises(JobCancelledError) as cancelled:
        await asyncio.wait_for(job, timeout=5.0)
    assert str(cancelled.value) == "task cancelled: python execution"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert not (settings.tasks_root / str(ctx.lease.task.id)).exists()
    assert ctx.reporter.progress[-1] == CANCELLED
    assert ctx.reporter.events[-1] == {
        "level": "warn", "stage": "cancelled", "message": "task cancelled: python execution",
    }  # fmt: skip
    assert scene.domain.requests_of("create") == scene.domain.requests_of("update") == []


async def test_case_44_a_token_rotated_during_downloads_is_used_by_every_later_request(
    tmp_path: Path,
) -> None:
    scene = seed_refined_scene()
    downloads: list[DomainRequest] = []

    def rotate_after_first_recording(request: DomainRequest) -> None:
        if request.kind == "download":
            downloads.append(request)
            if len(downloads) == 2:  # the manifest, then the first recording
                scene.domain.token.set("token-B")

    scene.domain.before_request = rotate_after_first_recording
    ctx = make_context(scene.domain, [scene.cid])
    await run_splatter_job(ctx, make_settings(tmp_path, "write-outputs"))
    tokens = [r.token for r in scene.domain.requests]
    first_b = tokens.index("token-B")
    assert len(downloads) == 8 and downloads[1].token == "token-A"
    assert all(token == "token-B" for token in tokens[first_b:])
    assert first_b == scene.domain.requests.index(downloads[1]) + 1
