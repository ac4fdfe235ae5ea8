"""Domain contents and task contexts for node tests, on the emulator or any other data store.

A *refined scene* is what the splatter consumes in production (protocol §3.11): a refined
manifest whose ``dataIDs`` name one scan by refined-scan name and one recording by id, the two
``dmt_recording_*`` items and the five ``colmap_*_bin<suffix>`` binaries (data type = prefix).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from app import CAPABILITY
from app.jobs.envelope import PushLease
from app.jobs.push_context import DomainPushContexts, PushTaskContext
from app.runner.naming import COLMAP_BINARIES
from emulator import EmulatorConfig, EmulatorServer

SUFFIX = "_2025-01-02_03-04-05"
SCAN_BY_NAME = "2025-01-01_10-00-00"
SCAN_BY_ID = "2025-01-01_11-00-00"
REG_SECRET = "node-tests-reg-secret"
#: §1.3 test vector: the wallet of lease-mode test nodes.
NODE_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"
APP_TOKEN = "node-tests-app-token"

EMULATOR_CONFIG = EmulatorConfig(
    token_secret="node-tests",
    registration_secret=REG_SECRET,
    app_token=APP_TOKEN,
    # Every heartbeat hands out a new domain token; like the real (stateless JWT) tokens, an old
    # one stays valid until it expires. (With revoke_superseded_tokens, a request crossing a
    # heartbeat in flight is refused, and one crossing two in a row fails after its replay:
    # strict enough to make lease tests flaky, not a behaviour of DMS.) That every request reads
    # the current token is pinned by the respx contract case 44.
    rotate="always",
)

#: Every COLMAP binary's name prefix (= data type), in order.
COLMAP_PREFIXES = tuple(prefix for prefix, _ in COLMAP_BINARIES)

Seed = Callable[[str, str, bytes], str]
"""Stores ``(name, data_type, content)`` in a domain; returns the item's id."""


@dataclass
class RefinedScene:
    """What :func:`seed_refined_scene` stored."""

    domain_id: str
    server_url: str
    manifest_id: str
    recording_by_id: str
    colmap_ids: dict[str, str] = field(default_factory=dict)

    @property
    def cid(self) -> str:
        """The manifest's domain data URL: the task's input CID."""
        return f"{self.server_url}/api/v1/domains/{self.domain_id}/data/{self.manifest_id}"

    def cid_of(self, data_id: str) -> str:
        return f"{self.server_url}/api/v1/domains/{self.domain_id}/data/{data_id}"


def seed_refined_scene(
    seed: Seed,
    domain_id: str,
    server_url: str,
    *,
    manifest_name: str = f"refined_manifest{SUFFIX}",
    colmap: tuple[str, ...] = COLMAP_PREFIXES,
) -> RefinedScene:
    """The case-37 layout: one recording found by derived name, one by id, COLMAP binaries."""
    by_id = seed(f"dmt_recording_{SCAN_BY_ID}", "dmt_recording_mp4", b"video-by-id")
    seed(f"dmt_recording_{SCAN_BY_NAME}", "dmt_recording_mp4", b"video-by-name")
    manifest = {"dataIDs": [f"refined_scan_{SCAN_BY_NAME}", by_id]}
    manifest_id = seed(manifest_name, "refined_manifest_json", json.dumps(manifest).encode())
    scene = RefinedScene(domain_id, server_url, manifest_id, by_id)
    for prefix in colmap:
        scene.colmap_ids[prefix] = seed(f"{prefix}{SUFFIX}", prefix, prefix.encode())
    return scene


def emulator_seed(emulator: EmulatorServer, domain_id: str) -> Seed:
    def seed(name: str, data_type: str, content: bytes) -> str:
        return str(emulator.state.seed_data(domain_id, name, data_type, content).id)

    return seed


def emulated_scene(emulator: EmulatorServer, **options: Any) -> RefinedScene:
    """A refined scene in a new domain of the emulator."""
    domain_id = str(uuid.uuid4())
    seed = emulator_seed(emulator, domain_id)
    return seed_refined_scene(seed, domain_id, emulator.domain_server_url, **options)


def push_envelope(
    emulator: EmulatorServer, scene: RefinedScene, cids: list[str] | None = None, **task: Any
) -> dict[str, Any]:
    """A lease envelope as DMS sends it, with a domain token the emulator accepts."""
    grant = emulator.state.issue_domain_token(scene.domain_id)
    return {
        "access_token": grant.token,
        "access_token_expires_at": "2030-01-01T00:00:00.123456789Z",
        "lease_expires_at": "2030-01-01T00:00:00Z",
        "domain_id": scene.domain_id,
        "domain_server_url": scene.server_url,
        "status": "leased",
        "cancel": None,
        "task": {
            "id": str(uuid.uuid4()),
            "job_id": str(uuid.uuid4()),
            "capability": CAPABILITY,
            "inputs_cids": [scene.cid] if cids is None else cids,
            "outputs_prefix": None,
            "priority": -1,
            "billing_units": "1.5",
            **task,
        },
    }


class RecordingReporter:
    """A ``ProgressReporter`` that keeps every progress value and event, in order."""

    def __init__(self) -> None:
        self.progress: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        self.progress.append(dict(progress))

    def log_event(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))

    def messages(self) -> list[str]:
        return [str(e.get("message")) for e in self.events]


@dataclass(frozen=True)
class RecordedContext:
    """A push job's real task context, with its reporter typed for inspection."""

    context: PushTaskContext
    reporter: RecordingReporter

    @property
    def task_id(self) -> str:
        return str(self.context.lease.task.id)


def push_context(
    emulator: EmulatorServer,
    http: httpx.AsyncClient,
    scene: RefinedScene,
    cids: list[str] | None = None,
    **task: Any,
) -> RecordedContext:
    """The task context the push door builds for an envelope over ``scene`` (real storage)."""
    lease = PushLease.model_validate(push_envelope(emulator, scene, cids, **task))
    reporter = RecordingReporter()
    context = DomainPushContexts(http, "node-tests/1")(lease, reporter, asyncio.Event())
    assert isinstance(context, PushTaskContext)
    return RecordedContext(context, reporter)


def domain_uploads(emulator: EmulatorServer) -> list[str]:
    """``METHOD path`` of every upload request the emulated domain server has seen."""
    return [
        f"{r.method} {r.path}"
        for r in emulator.state.request_log("domain")
        if r.method in ("POST", "PUT")
    ]


def stored(emulator: EmulatorServer, domain_id: str) -> dict[tuple[str, str], bytes]:
    """Every item of a domain: ``(name, data_type)`` → content."""
    state = emulator.state
    return {
        (item.name, item.data_type): state.read_data(domain_id, item.id)
        for item in state.data_items(domain_id)
    }
