"""An in-memory domain for benchmarking the node without a domain server.

Implements the slice of ``domain_client``'s surface the runner uses (listing, raw download,
materialise, artifact upsert) over a dict, so a pushed job runs the real runner, store, progress
mapping and pipeline child; only the network is absent. Seeded with a refined manifest, one
recording and the five COLMAP binaries (placeholder bytes: the load child does not read them).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.jobs.envelope import PushLease
from app.ports import ProgressReporter, TaskContextView
from app.runner.naming import COLMAP_BINARIES

MANIFEST_ID = "00000000-0000-4000-8000-000000000001"
SUFFIX = "_2025-01-02_03-04-05"


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    data_type: str
    content: bytes


@dataclass(frozen=True)
class Local:
    path: Path
    metadata: Item


@dataclass(frozen=True)
class Materialized:
    root: Path
    primary: Local


@dataclass(frozen=True)
class Artifact:
    logical_path: str
    name: str
    data_type: str
    id: str | None


@dataclass
class LocalDomain:
    items: dict[str, Item] = field(default_factory=dict)

    def add(self, name: str, data_type: str, content: bytes, item_id: str | None = None) -> str:
        item = Item(item_id or str(uuid.uuid4()), name, data_type, content)
        self.items[item.id] = item
        return item.id

    async def list_metadata(
        self,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
    ) -> list[Item]:
        await asyncio.sleep(0)
        return [
            item
            for item in self.items.values()
            if (not ids or item.id in ids)
            and (name is None or item.name == name)
            and (data_type is None or item.data_type == data_type)
        ]

    async def download_raw(self, data_id: str, dest: Path) -> int:
        content = self.items[data_id].content
        await asyncio.to_thread(_write, dest, content)
        return len(content)


class LocalStorage:
    def __init__(self, domain: LocalDomain) -> None:
        self.domain = domain
        self._artifacts: dict[str, Artifact] = {}

    async def materialize(self, cid: str, dest_root: Path) -> Materialized:
        item = self.domain.items[cid.rsplit("/", 1)[-1]]
        root = dest_root / f"domain-input-{uuid.uuid4()}"
        path = root / "datasets" / item.name / f"{item.name}.{item.data_type}"
        await self.domain.download_raw(item.id, path)
        return Materialized(root, Local(path, item))

    async def put_domain_artifact(
        self,
        rel_path: str,
        name: str,
        data_type: str,
        content: bytes | Path,
        existing_id: str | None = None,
    ) -> Artifact:
        data = await asyncio.to_thread(_read, content) if isinstance(content, Path) else content
        item_id = self.domain.add(name, data_type, data, existing_id)
        self._artifacts[rel_path] = Artifact(rel_path, name, data_type, item_id)
        return self._artifacts[rel_path]

    def artifacts(self) -> list[Artifact]:
        return sorted(self._artifacts.values(), key=lambda a: a.logical_path)


@dataclass(frozen=True)
class LocalContext:
    lease: PushLease
    storage: LocalStorage
    reporter: ProgressReporter
    cancelled: asyncio.Event


class LocalContexts:
    """A ``PushContextFactory`` over one seeded :class:`LocalDomain`."""

    def __init__(self) -> None:
        self.domain = seeded_domain()

    def __call__(
        self, lease: PushLease, reporter: ProgressReporter, cancelled: asyncio.Event
    ) -> TaskContextView:
        return LocalContext(lease, LocalStorage(self.domain), reporter, cancelled)


def seeded_domain() -> LocalDomain:
    domain = LocalDomain()
    scan = "2025-01-01_10-00-00"
    domain.add(f"dmt_recording_{scan}", "dmt_recording_mp4", b"\0" * 4096)
    manifest = json.dumps({"dataIDs": [f"refined_scan_{scan}"]}).encode()
    domain.add(f"refined_manifest{SUFFIX}", "refined_manifest_json", manifest, MANIFEST_ID)
    for prefix, _ in COLMAP_BINARIES:
        domain.add(f"{prefix}{SUFFIX}", prefix, b"\0" * 64)
    return domain


def _write(dest: Path, content: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(content)


def _read(source: Path) -> bytes:
    return source.read_bytes()


__all__ = ["MANIFEST_ID", "LocalContexts", "LocalDomain"]
