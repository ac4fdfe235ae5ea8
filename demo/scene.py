"""Steps 2 to 4: the synthetic scene, stored as domain data the way the reconstruction server
leaves it (protocol §3.11), and the DMS job that asks for its splat."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app import CAPABILITY, PROJECT_ROOT
from demo.environment import child_env
from domain_client.domain import DomainClient
from domain_client.tokens import DomainToken
from emulator import EmulatorServer

__all__ = ["COLMAP_ITEMS", "SeededScene", "create_job", "make_scene", "scene_items", "seed_scene"]

#: (file under refined/global/refined_sfm_combined/, name prefix = data type), §3.11.
COLMAP_ITEMS: tuple[tuple[str, str], ...] = (
    ("cameras.bin", "colmap_cameras_bin"),
    ("frames.bin", "colmap_frames_bin"),
    ("images.bin", "colmap_images_bin"),
    ("points3D.bin", "colmap_points3d_bin"),
    ("rigs.bin", "colmap_rigs_bin"),
)


@dataclass(frozen=True)
class SeededScene:
    """The scene as domain data: its domain, the manifest's name, id and CID, and every stored
    item as ``(name, data_type, size in bytes)``."""

    domain_id: str
    manifest_name: str
    manifest_id: str
    cid: str
    items: list[tuple[str, str, int]]


def make_scene(folder: Path, views: int, size: str) -> dict[str, Any]:
    """Runs ``python -m pipeline synthetic`` (``views`` frames of ``size`` = ``WxH`` pixels)
    into ``folder``; returns its summary (the last JSON line it prints)."""
    command = [
        sys.executable, "-m", "pipeline", "synthetic", "--job-root", str(folder),
        "--views", str(views), "--size", size,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, env=child_env()
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthetic scene failed:\n{result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def scene_items(
    summary: dict[str, Any], domain_id: str, server_url: str
) -> list[tuple[str, str, bytes]]:
    """``(name, data_type, content)`` of the recording, the COLMAP binaries and the manifest
    (last), as the reconstruction server uploads them; the manifest names this domain."""
    suffix = str(summary["manifest_name"]).removeprefix("refined_manifest")
    scan = str(summary["config"]["scan"])
    items = [(f"dmt_recording_{scan}", "dmt_recording_mp4", Path(summary["video"]).read_bytes())]
    model = Path(summary["model"])
    for file_name, prefix in COLMAP_ITEMS:
        items.append((f"{prefix}{suffix}", prefix, (model / file_name).read_bytes()))
    manifest = json.loads(Path(summary["manifest"]).read_text())
    manifest.update(domainID=domain_id, domainServerURL=server_url)
    items.append((summary["manifest_name"], "refined_manifest_json", json.dumps(manifest).encode()))
    return items


async def seed_scene(
    http: httpx.AsyncClient, emulator: EmulatorServer, summary: dict[str, Any]
) -> SeededScene:
    """Uploads the scene through the domain server's API, named as the reconstruction server
    names its outputs (protocol §3.11)."""
    domain_id = str(uuid.uuid4())
    grant = emulator.state.issue_domain_token(domain_id)
    domain = DomainClient(
        http, emulator.domain_server_url, domain_id, DomainToken(grant.token), "splatter-demo"
    )
    uploads = await asyncio.to_thread(scene_items, summary, domain_id, emulator.domain_server_url)
    stored = [await domain.create(name, data_type, content) for name, data_type, content in uploads]
    manifest_item = stored[-1]
    cid = f"{emulator.domain_server_url}/api/v1/domains/{domain_id}/data/{manifest_item.id}"
    items = [(name, data_type, len(content)) for name, data_type, content in uploads]
    return SeededScene(domain_id, summary["manifest_name"], manifest_item.id, cid, items)


async def create_job(http: httpx.AsyncClient, emulator: EmulatorServer, scene: SeededScene) -> str:
    """``POST {DMS}/jobs`` with the app token (§1.12); returns the task id."""
    body = {
        "label": "splatter demo",
        "domain_id": scene.domain_id,
        "priority": 0,
        "meta": {},
        "tasks": [
            {"label": "splat", "stage": "splatter", "capability": CAPABILITY,
             "capability_filters": {}, "priority": 0, "inputs_cids": [scene.cid],
             "outputs_prefix": None, "mode": "public", "meta": {}, "max_attempts": 1}
        ],
        "edges": [],
    }  # fmt: skip
    app_token = emulator.state.config.app_token
    response = await http.post(
        f"{emulator.dms_base_url}/jobs", json=body, headers={"Authorization": f"Bearer {app_token}"}
    )
    response.raise_for_status()
    task_id: str = response.json()["tasks"][0]["id"]
    return task_id
