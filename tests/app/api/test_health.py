"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import CAPABILITY
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings

pytestmark = pytest.mark.anyio


async def test_health_is_200_with_an_empty_body_like_the_reference(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        response = await node.client.get("/health")
    assert response.status_code == 200 and response.content == b""


async def test_ready_lists_its_checks(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        response = await node.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"store": "ok", "worker": "ok", "pipeline": "ok", "tasks_root": "ok",
                   "disk": "ok"},
        "mode": {"lease": False, "push": True, "watch": False},
        "state": "idle",
    }  # fmt: skip


async def test_ready_is_503_when_the_pipeline_cannot_start_or_the_disk_is_short(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, pipeline_command=f"{tmp_path}/gone -m pipeline", min_free_disk_mb=1 << 40
    )
    async with running_node(settings) as node:
        response = await node.client.get("/ready")
        health = await node.client.get("/health")
    assert response.status_code == 503 and health.status_code == 200
    checks = response.json()["checks"]
    assert checks["pipeline"] == f"pipeline command not found or not executable: {tmp_path}/gone"
    assert checks["disk"].startswith("insufficient disk space: ")
    assert checks["store"] == "ok"


async def test_metrics_expose_jobs_stages_bytes_and_steps(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "progress:12", "write-outputs")
    async with running_node(settings) as node:
        job = await node.push(push_envelope(emulator, scene))
        await node.wait_state(job["id"], "succeeded")
        response = await node.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'splatter_jobs{state="succeeded"} 1.0' in text
    assert 'splatter_jobs{state="running"} 0.0' in text
    assert 'splatter_jobs_finished_total{state="succeeded"} 1.0' in text
    assert "splatter_training_steps_total 12.0" in text
    assert 'splatter_stage_duration_seconds_count{stage="pipeline_train"} 1.0' in text
    assert "splatter_bytes_uploaded_total 226.0" in text  # the stub's four outputs
    # two recordings (11 + 13 bytes) and the five COLMAP binaries (their prefixes as content)
    assert "splatter_bytes_downloaded_total 110.0" in text


async def test_the_openapi_document_describes_every_route_with_examples(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        schema = (await node.client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths) >= {CAPABILITY, "/jobs", "/jobs/{job_id}", "/health", "/ready", "/metrics"}
    intake = paths[CAPABILITY]["post"]
    assert set(intake["responses"]) >= {"202", "401", "409", "413", "422", "503"}
    assert intake["security"] == [{"HTTPBearer": []}]
    assert {"get", "delete"} <= set(paths["/jobs/{job_id}"])
    components = schema["components"]["schemas"]
    assert components["JobCreate"]["examples"][0]["task"]["capability"] == CAPABILITY
    assert components["JobPublic"]["examples"][0]["progress"]["pipeline_stage"] == "train"
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
