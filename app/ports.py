"""What the runner needs from ``domain_client``, as structural types.

Ids are ``UUID`` in the push envelope and ``str`` in ``domain_client``'s models; both fit.
The runner is written against the agreed ``domain_client`` surface (``TaskContext``,
``TaskStorage``, ``DomainClient``, ``Lease``, ``DataMetadata``, ``ArtifactRecord``) and the
push door's ``PushTaskContext``. These protocols name only the members the runner uses,
read-only: the lease engine's ``TaskContext`` and the push door's context both satisfy them, and
the runner depends on nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

__all__ = [
    "ArtifactView",
    "DataMetadataView",
    "DomainView",
    "LeaseView",
    "LocalItemView",
    "MaterializedView",
    "ProgressReporter",
    "TaskContextView",
    "TaskSpecView",
    "TaskStorageView",
]


class TaskSpecView(Protocol):
    """``Lease.task``: the DMS task spec (protocol §1.6)."""

    @property
    def id(self) -> UUID | str: ...
    @property
    def job_id(self) -> UUID | str | None: ...
    @property
    def capability(self) -> str: ...
    @property
    def inputs_cids(self) -> Sequence[str]: ...


class LeaseView(Protocol):
    """The lease envelope (protocol §1.6), kept current by heartbeats."""

    @property
    def task(self) -> TaskSpecView: ...
    @property
    def domain_id(self) -> UUID | str | None: ...


class DataMetadataView(Protocol):
    """One domain data item's metadata (protocol §2.4); name and type may be missing."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def data_type(self) -> str | None: ...


class ArtifactView(Protocol):
    """One recorded upload: the four receipt keys (protocol §1.9)."""

    @property
    def logical_path(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def data_type(self) -> str: ...
    @property
    def id(self) -> str | None: ...


class LocalItemView(Protocol):
    @property
    def path(self) -> Path: ...
    @property
    def metadata(self) -> DataMetadataView: ...


class MaterializedView(Protocol):
    """A materialised input CID: its download root and the primary item (protocol §2.11)."""

    @property
    def root(self) -> Path: ...
    @property
    def primary(self) -> LocalItemView: ...


class DomainView(Protocol):
    """The task's domain-server client (reads the current domain token on every request)."""

    async def list_metadata(
        self,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
    ) -> Sequence[DataMetadataView]: ...

    async def download_raw(self, data_id: str, dest: Path) -> int: ...


class TaskStorageView(Protocol):
    """Task-scoped storage: materialise inputs, upsert artifacts, list what was uploaded."""

    @property
    def domain(self) -> DomainView: ...

    async def materialize(self, cid: str, dest_root: Path) -> MaterializedView: ...

    async def put_domain_artifact(
        self,
        rel_path: str,
        name: str,
        data_type: str,
        content: bytes | Path,
        existing_id: str | None = None,
    ) -> ArtifactView: ...

    def artifacts(self) -> Sequence[ArtifactView]: ...


class ProgressReporter(Protocol):
    """Replace-semantics progress and an append-only event log (each may trigger a heartbeat)."""

    def set_progress(self, progress: dict[str, Any]) -> None: ...

    def log_event(self, event: dict[str, Any]) -> None: ...


class TaskContextView(Protocol):
    """What a handler receives: the lease, storage, a reporter and the cancel flag."""

    @property
    def lease(self) -> LeaseView: ...
    @property
    def storage(self) -> TaskStorageView: ...
    @property
    def reporter(self) -> ProgressReporter: ...
    @property
    def cancelled(self) -> asyncio.Event: ...
