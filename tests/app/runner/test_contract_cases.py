"""Protocol §4.11 cases 37–44: the splatter runner as the lease engine's handler, on the wire.

The real ``domain_client`` task engine, DMS client, domain client and task storage run the real
runner (with the stub pipeline as its child); DMS and the domain server are
``tests.domain_client.fake_network.FakeNetwork`` behind respx, which logs every request with its
bearer token. Assertions are on what crossed the network edge: the listings and downloads, the
heartbeats' progress, the exact receipt bodies.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from app import CAPABILITY
from app.runner import run_splatter_job
from app.runner.progress import PYTHON_FAILED
from app.settings import Settings
from domain_client import DmsClient, EngineConfig, RetryPolicy, StaticTokenSource, TaskEngine
from domain_client.engine import CycleOutcome, TaskContext
from tests.app.domains import SCAN_BY_ID, SCAN_BY_NAME, SUFFIX, RefinedScene, seed_refined_scene
from tests.app.factories import make_settings
from tests.domain_client.fake_network import BASE, FakeNetwork
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

DDS_TOKEN = "node-dds-token"


@dataclass
class Wire:
    """The mocked network, a domain on it, and the engine that runs tasks against it."""

    net: FakeNetwork
    http: httpx.AsyncClient
    mock: respx.MockRouter
    domain_id: str
    installed: bool = False

    def seed(self, name: str, data_type: str, content: bytes) -> str:
        return self.net.seed(self.domain_id, name, data_type, content)

    def scene(self, **options: Any) -> RefinedScene:
        return seed_refined_scene(self.seed, self.domain_id, BASE, **options)

    def task(self, cids: list[str], outputs_prefix: str | None = None) -> str:
        return self.net.create_task(self.domain_id, CAPABILITY, cids, outputs_prefix)

    def cid(self, data_id: str) -> str:
        return f"{BASE}/api/v1/domains/{self.domain_id}/data/{data_id}"

    async def run(self, settings: Settings) -> CycleOutcome:
        """One engine cycle (lease → heartbeats → runner → receipt) with this node's runner.

        The network's routes are installed on first use, after any route a test added first
        (respx uses the first route that matches).
        """
        if not self.installed:
            self.net.install(self.mock)
            self.installed = True

        async def handler(ctx: TaskContext) -> None:
            await run_splatter_job(ctx, settings)

        config = EngineConfig(
            client_id="node-tests/1",
            heartbeat_max_interval_s=0.2,  # heartbeats between progress updates too
            cancel_grace_s=settings.cancel_grace_secs + 5,
            domain_retry=RetryPolicy(attempts=1),
        )
        dms = DmsClient(self.http, f"{BASE}/v1", StaticTokenSource(DDS_TOKEN))
        engine = TaskEngine(dms, self.http, {CAPABILITY: handler}, config)
        return await engine.run_once()

    def domain_requests(self) -> list[tuple[str, httpx.URL, str]]:
        """``(method, url, bearer)`` of every domain-server request, in arrival order."""
        return [
            (method, httpx.URL(BASE + target), bearer)
            for method, target, bearer in self.net.log
            if target.startswith("/api/v1/domains/")
        ]

    def listings(self) -> list[dict[str, str]]:
        """The query of every metadata listing."""
        return [
            dict(url.params)
            for method, url, _ in self.domain_requests()
            if method == "GET" and url.path.endswith("/data")
        ]

    def downloads(self) -> list[str]:
        """Ids of the raw downloads."""
        return [
            url.path.rsplit("/", 1)[-1]
            for method, url, _ in self.domain_requests()
            if method == "GET" and url.params.get("raw") == "true"
        ]

    def dms_actions(self, task_id: str) -> list[str]:
        """``heartbeat`` / ``complete`` / ``fail`` calls for the task, in order."""
        prefix = f"/v1/tasks/{task_id}/"
        return [t.removeprefix(prefix) for _, t, _ in self.net.log if t.startswith(prefix)]

    def job(self, task_id: str) -> dict[str, Any]:
        task = self.net.tasks[task_id]
        return {
            "task_id": task_id,
            "job_id": task.job_id,
            "domain_id": self.domain_id,
            "capability": CAPABILITY,
        }


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    net = FakeNetwork("unused-reg-secret")
    net.dds_tokens.add(DDS_TOKEN)
    with respx.mock(assert_all_called=False) as mock:
        async with httpx.AsyncClient() as http:
            yield Wire(net, http, mock, str(uuid.uuid4()))


def settings_for(tmp_path: Path, *actions: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, *actions, **overrides)


async def test_case_37_manifest_resolves_recordings_by_id_and_name_and_colmap_binaries(
    tmp_path: Path, wire: Wire
) -> None:
    scene = wire.scene()
    task_id = wire.task([scene.cid])
    settings = settings_for(tmp_path, "write-splat", disable_tasks_cleanup=True)
    assert await wire.run(settings) == "completed"

    listings = wire.listings()
    assert {"ids": scene.recording_by_id} in listings
    by_name = {"name": f"dmt_recording_{SCAN_BY_NAME}", "data_type": "dmt_recording_mp4"}
    assert by_name in listings
    assert {**by_name, "name": f"dmt_recording_{SCAN_BY_NAME}.mp4"} not in listings
    assert [q for q in listings if q.get("name", "").startswith("colmap_")] == [
        {"name": f"colmap_{x}_bin{SUFFIX}"}
        for x in ("frames", "images", "cameras", "points3d", "rigs")
    ]  # no data-type filter
    assert set(wire.downloads()) == {
        scene.manifest_id, scene.recording_by_id, *scene.colmap_ids.values(),
        _named(wire, f"dmt_recording_{SCAN_BY_NAME}"),
    }  # fmt: skip
    root = settings.tasks_root / task_id
    assert (root / "datasets" / SCAN_BY_ID / "Frames.mp4").read_bytes() == b"video-by-id"
    assert (root / "datasets" / SCAN_BY_NAME / "Frames.mp4").read_bytes() == b"video-by-name"
    colmap_dir = root / "refined" / "global" / "refined_sfm_combined"
    assert sorted(p.name for p in colmap_dir.iterdir()) == [
        "cameras.bin", "frames.bin", "images.bin", "points3D.bin", "rigs.bin",
    ]  # fmt: skip
    assert (colmap_dir / "points3D.bin").read_bytes() == b"colmap_points3d_bin"
    assert not (root / ".input").exists()  # the download root is gone once the manifest is read


def _named(wire: Wire, name: str) -> str:
    return next(item.id for item in wire.net.items.values() if item.name == name)


async def test_case_37_the_mp4_name_is_tried_only_when_the_plain_name_finds_nothing(
    tmp_path: Path, wire: Wire
) -> None:
    wire.seed("dmt_recording_2025-03-03_00-00-00.mp4", "dmt_recording_mp4", b"video")
    manifest = json.dumps({"dataIDs": ["refined_scan_2025-03-03_00-00-00"]}).encode()
    manifest_id = wire.seed("some_manifest", "refined_manifest_json", manifest)
    task_id = wire.task([manifest_id])
    settings = settings_for(tmp_path, "write-splat", disable_tasks_cleanup=True)
    assert await wire.run(settings) == "completed"
    names = [q["name"] for q in wire.listings() if q.get("data_type") == "dmt_recording_mp4"]
    assert names == ["dmt_recording_2025-03-03_00-00-00", "dmt_recording_2025-03-03_00-00-00.mp4"]
    frames = settings.tasks_root / task_id / "datasets" / "2025-03-03_00-00-00" / "Frames.mp4"
    assert frames.read_bytes() == b"video"


async def test_case_38_a_manifest_without_recordings_fails_before_the_pipeline(
    tmp_path: Path, wire: Wire
) -> None:
    manifest = json.dumps({"dataIDs": [f"refined_scan_{SCAN_BY_NAME}"]}).encode()
    manifest_id = wire.seed(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest)
    task_id = wire.task([wire.cid(manifest_id)])
    ran = tmp_path / "pipeline-ran"
    assert await wire.run(settings_for(tmp_path, f"touch:{ran}")) == "failed"
    reason = "no datasets downloaded; expected at least one dmt_recording_* input"
    assert wire.net.tasks[task_id].fail_body == {
        "reason": f"runner failed: {reason}",
        "details": {"job": wire.job(task_id), "artifacts": []},
    }
    assert not ran.exists()
    last = wire.net.tasks[task_id].heartbeats[-1]
    assert last["events"][-1] == {
        "level": "error", "stage": "runner",
        "message": "no datasets downloaded; expected at least one dmt_recording_* input",
    }  # fmt: skip


async def test_case_39_an_input_that_is_not_json_fails_with_the_cid_named(
    tmp_path: Path, wire: Wire
) -> None:
    data_id = wire.seed(f"refined_manifest{SUFFIX}", "refined_manifest_json", b"\x00not json{")
    cid = wire.cid(data_id)
    task_id = wire.task([cid])
    assert await wire.run(settings_for(tmp_path)) == "failed"
    assert (
        wire.net.tasks[task_id].fail_body["reason"]
        == f"runner failed: parse input cid {cid} as JSON"
    )


async def test_case_39_no_input_cid_fails_with_the_reference_message(
    tmp_path: Path, wire: Wire
) -> None:
    task_id = wire.task([])
    assert await wire.run(settings_for(tmp_path)) == "failed"
    assert wire.net.tasks[task_id].fail_body == {
        "reason": "runner failed: no input cid provided; cannot run splatter job",
        "details": {"job": wire.job(task_id), "artifacts": []},
    }


async def test_case_40_a_pipeline_exiting_1_fails_after_the_python_failed_progress(
    tmp_path: Path, wire: Wire
) -> None:
    task_id = wire.task([wire.scene().cid])
    assert await wire.run(settings_for(tmp_path, "stderr:boom", "exit:1")) == "failed"
    task = wire.net.tasks[task_id]
    assert task.fail_body == {
        "reason": "runner failed: python job failed: status=Some(1)",
        "details": {"job": wire.job(task_id), "artifacts": []},
    }
    assert wire.dms_actions(task_id)[-2:] == ["heartbeat", "fail"]
    assert task.heartbeats[-1]["progress"] == PYTHON_FAILED  # sent before the fail
    events = [e for beat in task.heartbeats for e in beat["events"]]
    failed = next(e for e in events if e["message"] == "python job failed")
    assert (failed["level"], failed["status"], failed["tail"]) == ("error", 1, ["stderr: boom"])
    assert not any(m == "POST" for m, _, _ in wire.domain_requests())  # nothing uploaded


async def test_case_41_success_without_the_splat_file_fails_naming_the_path(
    tmp_path: Path, wire: Wire
) -> None:
    task_id = wire.task([wire.scene().cid])
    settings = settings_for(tmp_path, "exit:0")
    assert await wire.run(settings) == "failed"
    expected = settings.tasks_root / task_id / "refined/splatter/splat_rot.splat"
    assert wire.net.tasks[task_id].fail_body["reason"] == (
        f"runner failed: expected output missing: {expected}"
    )


async def test_case_42_the_splat_is_uploaded_as_refined_splat_with_the_suffix(
    tmp_path: Path, wire: Wire
) -> None:
    task_id = wire.task([wire.scene().cid])
    assert await wire.run(settings_for(tmp_path, "write-splat")) == "completed"
    (splat,) = [i for i in wire.net.items.values() if i.data_type == "splat_data"]
    assert (splat.name, splat.content) == (f"refined_splat{SUFFIX}", b"\x01" * 64)
    artifact = {"logical_path": splat.name, "name": splat.name, "data_type": "splat_data",
                "id": splat.id}  # fmt: skip
    assert wire.net.tasks[task_id].complete_body == {
        "output_cids": [splat.id],
        "meta": {"job": wire.job(task_id), "artifacts": [artifact]},
    }
    assert "fail" not in wire.dms_actions(task_id)


async def test_case_42_an_input_without_the_manifest_prefix_uploads_plain_refined_splat(
    tmp_path: Path, wire: Wire
) -> None:
    scene = wire.scene(manifest_name="dmt_manifest_2024-01-02_03-04-05", colmap=())
    task_id = wire.task([scene.cid], outputs_prefix="out")
    assert await wire.run(settings_for(tmp_path, "write-outputs")) == "completed"
    artifacts = wire.net.tasks[task_id].complete_body["meta"]["artifacts"]
    assert [(a["logical_path"], a["name"], a["data_type"]) for a in artifacts] == [
        ("out/refined_splat", "refined_splat", "splat_data"),
        ("out/refined_splat_preview_angle", "refined_splat_preview_angle", "splat_preview_angle"),
        ("out/refined_splat_preview_top", "refined_splat_preview_top", "splat_preview_top"),
        ("out/refined_splat_preview_video", "refined_splat_preview_video", "splat_preview_video"),
    ]
    assert not any(q.get("name", "").startswith("colmap_") for q in wire.listings())


async def test_case_43_a_dms_cancel_stops_the_pipeline_sends_nothing_and_removes_the_folder(
    tmp_path: Path, wire: Wire
) -> None:
    task_id = wire.task([wire.scene().cid])
    pidfile = tmp_path / "child.pid"
    settings = settings_for(tmp_path, f"pid:{pidfile}", "sleep:60", cancel_grace_secs=5.0)
    run = asyncio.create_task(wire.run(settings))
    await eventually(pidfile.exists)
    wire.net.cancel_requested.add(task_id)  # the next heartbeat says cancel: true
    assert await asyncio.wait_for(run, timeout=10.0) == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert not (settings.tasks_root / task_id).exists()
    assert set(wire.dms_actions(task_id)) == {"heartbeat"}  # no complete, no fail
    assert not any(m in ("POST", "PUT") for m, _, _ in wire.domain_requests())


async def test_case_44_a_token_rotated_during_downloads_is_used_by_every_later_request(
    tmp_path: Path, wire: Wire
) -> None:
    scene = wire.scene()
    task_id = wire.task([scene.cid])
    wire.net.rotate_on_heartbeat = False  # one rotation, at a known moment
    task = wire.net.tasks[task_id]
    rotated_at: list[int] = []

    def heartbeats() -> int:
        return len(task.heartbeats)

    async def slow_first_recording(request: httpx.Request) -> httpx.Response:
        """Holds the first recording's download until a heartbeat rotated the token and the
        next heartbeat shows the node has applied it."""
        wire.net.rotate_next.add(task_id)
        armed_at = heartbeats()
        await eventually(lambda: heartbeats() >= armed_at + 2)
        rotated_at.append(armed_at)
        return wire.net._raw(request, wire.domain_id, scene.recording_by_id)

    wire.mock.get(url__regex=rf".*/data/{scene.recording_by_id}\?raw=true$").mock(
        side_effect=_logged(wire, slow_first_recording)
    )
    assert await wire.run(settings_for(tmp_path, "write-splat")) == "completed"

    requests = wire.domain_requests()
    tokens = [bearer for _, _, bearer in requests]
    slow = next(i for i, (_, url, _) in enumerate(requests) if scene.recording_by_id in url.path
                and url.params.get("raw") == "true")  # fmt: skip
    before, after = set(tokens[: slow + 1]), set(tokens[slow + 1 :])
    assert len(before) == 1 and len(after) == 1 and before != after
    assert len(requests) - slow - 1 >= 8  # the other recording, 5 COLMAP binaries, the upload
    assert rotated_at


def _logged(wire: Wire, respond: Callable[[httpx.Request], Any]) -> Callable[[httpx.Request], Any]:
    """Adds a custom route's requests to the network's log, as its own routes do."""

    async def logged(request: httpx.Request) -> httpx.Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        wire.net.log.append((request.method, request.url.raw_path.decode(), bearer))
        response: httpx.Response = await respond(request)
        return response

    return logged
