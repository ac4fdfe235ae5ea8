"""In-memory stand-ins for the agreed ``domain_client`` surface (DOMAIN_CLIENT_API.md).

``FakeDomain`` is a domain server's data store that records every request together with the
bearer token it would have carried (read from ``FakeToken.current()`` at request time);
``FakeStorage`` follows ``TaskStorage`` semantics (materialise a CID, upsert artifacts by name
and type, record them sorted by logical path); ``FakeReporter`` records progress and events;
``FakeTaskContext`` bundles them like ``domain_client.engine.TaskContext``. At integration these
give way to the real classes over respx / the emulator.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import CAPABILITY


class FakeDomainError(Exception):
    """A domain request failed (display strings as protocol §2.13)."""


class FakeToken:
    """``DomainToken``: the current domain bearer, rotated by heartbeats."""

    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        return self._token

    def set(self, token: str) -> None:
        self._token = token


@dataclass(frozen=True)
class FakeMetadata:
    id: str
    name: str
    data_type: str
    size: int
    domain_id: str


@dataclass(frozen=True)
class FakeArtifact:
    logical_path: str
    name: str
    data_type: str
    id: str | None


@dataclass(frozen=True)
class FakeLocalItem:
    path: Path
    metadata: FakeMetadata


@dataclass(frozen=True)
class FakeMaterialized:
    root: Path
    primary: FakeLocalItem
    related: list[FakeLocalItem]


@dataclass(frozen=True)
class DomainRequest:
    """One request as the domain server would have seen it."""

    kind: str  # "list" | "download" | "create" | "update"
    params: dict[str, Any]
    token: str


@dataclass
class FakeDomain:
    """A domain's data items plus a log of requests; failures can be injected per request."""

    domain_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    token: FakeToken = field(default_factory=lambda: FakeToken("token-A"))
    items: dict[str, tuple[FakeMetadata, bytes]] = field(default_factory=dict)
    requests: list[DomainRequest] = field(default_factory=list)
    #: called with each request before it is served; may raise to make it fail.
    before_request: Callable[[DomainRequest], None] | None = None

    def add(self, name: str, data_type: str, content: bytes, item_id: str | None = None) -> str:
        item_id = item_id or str(uuid.uuid4())
        meta = FakeMetadata(item_id, name, data_type, len(content), self.domain_id)
        self.items[item_id] = (meta, content)
        return item_id

    def by_name(self, name: str) -> tuple[FakeMetadata, bytes]:
        return next(v for v in self.items.values() if v[0].name == name)

    def requests_of(self, kind: str) -> list[DomainRequest]:
        return [r for r in self.requests if r.kind == kind]

    def _record(self, kind: str, **params: Any) -> None:
        request = DomainRequest(kind, params, self.token.current())
        self.requests.append(request)
        if self.before_request is not None:
            self.before_request(request)

    async def list_metadata(
        self,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
    ) -> list[FakeMetadata]:
        self._record("list", ids=list(ids) if ids else None, name=name, data_type=data_type)
        await asyncio.sleep(0)
        found = [meta for meta, _ in self.items.values()]
        if ids:
            found = [m for m in found if m.id in ids]
        if name is not None:
            found = [m for m in found if m.name == name]
        if data_type is not None:
            found = [m for m in found if m.data_type == data_type]
        return found

    async def download_raw(self, data_id: str, dest: Path) -> int:
        self._record("download", data_id=data_id)
        await asyncio.sleep(0)
        if data_id not in self.items:
            raise FakeDomainError("not found (404)")
        content = self.items[data_id][1]
        _write(dest, content)
        return len(content)

    async def upload(
        self, name: str, data_type: str, content: bytes | Path, existing_id: str | None
    ) -> FakeMetadata:
        kind = "update" if existing_id else "create"
        self._record(
            kind,
            name=name,
            data_type=data_type,
            existing_id=existing_id,
            content_kind="path" if isinstance(content, Path) else "bytes",
        )
        await asyncio.sleep(0)
        data = _read(content) if isinstance(content, Path) else content
        item_id = existing_id or str(uuid.uuid4())
        meta = FakeMetadata(item_id, name, data_type, len(data), self.domain_id)
        self.items[item_id] = (meta, data)
        return meta


class FakeStorage:
    """``TaskStorage``: CID materialisation and artifact upserts with receipt records."""

    def __init__(self, domain: FakeDomain, task_id: str, outputs_prefix: str | None = None) -> None:
        self.domain = domain
        self.task_id = task_id
        self.outputs_prefix = outputs_prefix
        self._records: dict[str, FakeArtifact] = {}

    async def materialize(self, cid: str, dest_root: Path) -> FakeMaterialized:
        if not cid.strip():
            raise FakeDomainError("bad request (400)")
        data_id = cid.rstrip("/").rsplit("/", 1)[-1]
        items = await self.domain.list_metadata(ids=[data_id])
        if not items:
            raise FakeDomainError("not found (404)")
        root = dest_root / f"domain-input-{uuid.uuid4()}"
        local = []
        for meta in items:
            folder = _download_folder(meta.name)
            file_name = f"{_sanitize(meta.name)}.{_sanitize(meta.data_type)}"
            path = root / "datasets" / folder / file_name
            await self.domain.download_raw(meta.id, path)
            local.append(FakeLocalItem(path, meta))
        return FakeMaterialized(root, local[0], local[1:])

    async def put_domain_artifact(
        self,
        rel_path: str,
        name: str,
        data_type: str,
        content: bytes | Path,
        existing_id: str | None = None,
    ) -> FakeArtifact:
        logical_path = self._logical_path(rel_path)
        recorded = self._records.get(logical_path)
        existing_id = existing_id or (recorded.id if recorded else None)
        if existing_id is None:
            found = await self.domain.list_metadata(name=name, data_type=data_type)
            existing_id = found[0].id if found else None
        meta = await self.domain.upload(name, data_type, content, existing_id)
        record = FakeArtifact(logical_path, name, data_type, meta.id)
        self._records[logical_path] = record
        return record

    def artifacts(self) -> list[FakeArtifact]:
        return sorted(self._records.values(), key=lambda a: a.logical_path)

    def _logical_path(self, rel_path: str) -> str:
        prefix = (self.outputs_prefix or "").strip("/")
        rel = rel_path.lstrip("/")
        if not prefix:
            return rel
        return f"{prefix}/{rel}" if rel else prefix


class FakeReporter:
    """Records every progress value and event, in order."""

    def __init__(self) -> None:
        self.progress: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def set_progress(self, progress: dict[str, Any]) -> None:
        self.progress.append(dict(progress))

    def log_event(self, event: dict[str, Any]) -> None:
        self.events.append(dict(event))

    def messages(self) -> list[str]:
        return [str(e.get("message")) for e in self.events]


@dataclass
class FakeTaskSpec:
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    job_id: uuid.UUID | None = field(default_factory=uuid.uuid4)
    capability: str = CAPABILITY
    inputs_cids: list[str] = field(default_factory=list)
    outputs_prefix: str | None = None


@dataclass
class FakeLease:
    task: FakeTaskSpec
    domain_id: uuid.UUID | None
    domain_server_url: str = "http://127.0.0.1:9/"
    access_token: str = "token-A"


@dataclass
class FakeTaskContext:
    lease: FakeLease
    storage: FakeStorage
    reporter: FakeReporter
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


def make_context(
    domain: FakeDomain, inputs_cids: list[str], outputs_prefix: str | None = None
) -> FakeTaskContext:
    """A task context over ``domain`` for a task with these input CIDs."""
    task = FakeTaskSpec(inputs_cids=inputs_cids, outputs_prefix=outputs_prefix)
    lease = FakeLease(task=task, domain_id=uuid.UUID(domain.domain_id))
    storage = FakeStorage(domain, str(task.id), outputs_prefix)
    return FakeTaskContext(lease=lease, storage=storage, reporter=FakeReporter())


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[_-]\d{2}-\d{2}-\d{2}")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "part"


def _download_folder(name: str) -> str:
    match = _TIMESTAMP.search(name)
    return match.group(0) if match else _sanitize(name)


def _write(dest: Path, content: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(content)


def _read(source: Path) -> bytes:
    return source.read_bytes()


class FakePushContexts:
    """A push door context factory over one ``FakeDomain`` (``PushContextFactory``)."""

    def __init__(self, domain: FakeDomain) -> None:
        self.domain = domain
        self.built: list[FakeTaskContext] = []

    def __call__(self, lease: Any, reporter: Any, cancelled: asyncio.Event) -> FakeTaskContext:
        task = FakeTaskSpec(
            id=lease.task.id,
            job_id=lease.task.job_id,
            capability=lease.task.capability,
            inputs_cids=list(lease.task.inputs_cids),
            outputs_prefix=lease.task.outputs_prefix,
        )
        self.domain.token.set(lease.access_token)
        ctx = FakeTaskContext(
            lease=FakeLease(task=task, domain_id=lease.domain_id),
            storage=FakeStorage(self.domain, str(task.id), task.outputs_prefix),
            reporter=reporter,
            cancelled=cancelled,
        )
        self.built.append(ctx)
        return ctx
