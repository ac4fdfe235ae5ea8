"""Task-scoped domain storage: input materialisation and artifact upserts (protocol §2.8–2.11).

One :class:`TaskStorage` per task. It records every uploaded artifact under its logical path
(``outputs_prefix/rel_path``) for the receipt, replaces an existing item of the same name and
data type by id instead of creating a duplicate (§2.9), and chooses the upload path as [PM]'s
``DomainOutput`` does (§2.8). It always talks to the lease's server and domain (§5 #4).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from domain_client.cid import CidTarget, parse_cid
from domain_client.domain import DomainClient, DownloadedItem
from domain_client.errors import ChunkedUploadUnsupportedError, DomainClientError, NotFoundError
from domain_client.limits import DownloadBounds
from domain_client.models import ArtifactRecord, DataMetadata, ServerInfo
from domain_client.multipart import UploadPart, build_upload_body
from domain_client.naming import (
    check_data_type,
    check_name,
    check_rel_path,
    dataset_folder,
    generated_artifact_name,
    infer_data_type,
    join_logical_path,
    local_file_name,
)

__all__ = ["DownloadMode", "LocalItem", "MaterializedInput", "TaskStorage", "dataset_path"]

logger = logging.getLogger(__name__)

LocalItem = DownloadedItem
"""A materialised item: ``path`` on disk and its ``metadata``."""

DownloadMode = Literal["list_raw", "multipart"]
"""``list_raw``: list metadata, then stream each item raw ([NH], the default, §5 #3);
``multipart``: one ``Accept: multipart/form-data`` request ([PM])."""


@dataclass(frozen=True)
class MaterializedInput:
    """A downloaded input CID.

    Attributes:
        root: the fresh ``domain-input-<uuid4>`` folder holding ``datasets/…``.
        primary: the first item the server returned.
        related: the other items, in server order.
    """

    root: Path
    primary: LocalItem
    related: list[LocalItem] = field(default_factory=list)


def dataset_path(metadata: DataMetadata) -> Path:
    """``datasets/<folder>/<name>.<data_type>`` relative to a materialisation root (§2.11)."""
    name = metadata.name or metadata.id
    file_name = local_file_name(name, metadata.data_type or "")
    return Path("datasets") / dataset_folder(name) / file_name


class TaskStorage:
    """Domain storage of one task.

    Args:
        domain: the lease's domain client (reads the current token on every request).
        task_id: used in generated artifact names (§2.10).
        outputs_prefix: the task's ``outputs_prefix`` (None/empty: no prefix).
        download_mode: how :meth:`materialize` downloads.
        strict_ids: refuse non-UUID data ids in CIDs ([NH]) instead of passing them on ([PM]).
    """

    def __init__(
        self,
        domain: DomainClient,
        task_id: str,
        outputs_prefix: str | None,
        *,
        download_mode: DownloadMode = "list_raw",
        strict_ids: bool = False,
    ) -> None:
        self.domain = domain
        self.task_id = task_id
        self.outputs_prefix = outputs_prefix
        self.download_mode: DownloadMode = download_mode
        self.strict_ids = strict_ids
        self._records: dict[str, ArtifactRecord] = {}
        self._lock = asyncio.Lock()

    # --- inputs ----------------------------------------------------------------------------

    async def materialize(
        self, cid: str, dest_root: Path, *, bounds: DownloadBounds | None = None
    ) -> MaterializedInput:
        """Download every item a CID selects into a fresh folder under ``dest_root``.

        Args:
            bounds: applied to each item (and to a multipart body as a whole).

        Raises:
            NotFoundError: the CID matched no item.
            InvalidInputError / BadRequestError: the CID is empty or malformed.
            DownloadTooLargeError: an item is larger than ``bounds`` allows.
        """
        target = parse_cid(cid, strict_ids=self.strict_ids)
        self._warn_if_elsewhere(cid, target)
        root = dest_root / f"domain-input-{uuid.uuid4()}"
        await asyncio.to_thread(root.mkdir, parents=True)
        try:
            items = await self._download(target, root, bounds)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, root, True)  # nothing half-downloaded stays
            raise
        return MaterializedInput(root=root, primary=items[0], related=items[1:])

    async def _download(
        self, target: CidTarget, root: Path, bounds: DownloadBounds | None
    ) -> list[LocalItem]:
        if self.download_mode == "multipart":
            return await self.domain.download_multipart(
                ids=target.ids or None,
                name=target.name,
                data_type=target.data_type,
                dest_dir=root,
                layout=dataset_path,
                bounds=bounds,
            )
        return await self._download_listed(target, root, bounds)

    def _warn_if_elsewhere(self, cid: str, target: CidTarget) -> None:
        if target.domain_id is not None and target.domain_id != self.domain.domain_id:
            logger.warning(
                "input cid %s names domain %s; using the lease domain %s",
                cid,
                target.domain_id,
                self.domain.domain_id,
            )
        if target.host is not None and target.host.rstrip("/") != _origin(self.domain.base_url):
            logger.info("input cid %s names host %s; using the lease server", cid, target.host)

    async def _download_listed(
        self, target: CidTarget, root: Path, bounds: DownloadBounds | None
    ) -> list[LocalItem]:
        if target.ids:
            found = await self.domain.list_metadata(ids=target.ids)
        else:
            found = await self.domain.list_metadata(name=target.name, data_type=target.data_type)
        if not found:
            raise NotFoundError(404)
        items = []
        for metadata in found:
            path = root / dataset_path(metadata)
            await self.domain.download_raw(
                metadata.id, path, expected_size=metadata.size, bounds=bounds
            )
            items.append(LocalItem(path, metadata))
        return items

    # --- outputs ---------------------------------------------------------------------------

    async def put_domain_artifact(
        self,
        rel_path: str,
        name: str,
        data_type: str,
        content: bytes | Path,
        existing_id: str | None = None,
    ) -> ArtifactRecord:
        """Create or replace (by id) the item ``name``/``data_type``; record it (§2.9).

        Existing id, first hit wins: ``existing_id``; the id recorded for the same logical path
        in this task; a lookup by exact name and data type (404 = none).

        Raises:
            NameRuleError: ``name``, ``data_type`` or ``rel_path`` breaks a rule (no request made).
        """
        check_rel_path(rel_path)
        check_name(name)
        check_data_type(data_type)
        logical_path = join_logical_path(self.outputs_prefix, rel_path)
        async with self._lock:
            target_id = existing_id or await self._existing_id(logical_path, name, data_type)
        stored = await self._upload(name, data_type, content, target_id)
        record = ArtifactRecord(
            logical_path=logical_path, name=name, data_type=data_type, id=stored.id or target_id
        )
        self._records[logical_path] = record
        return record

    async def put_bytes(self, rel_path: str, data: bytes) -> ArtifactRecord:
        """Upload bytes under a generated name and an inferred data type (§2.10)."""
        return await self._put_generated(rel_path, data)

    async def put_file(self, rel_path: str, path: Path) -> ArtifactRecord:
        """Upload a file under a generated name and an inferred data type (§2.10)."""
        return await self._put_generated(rel_path, path)

    async def _put_generated(self, rel_path: str, content: bytes | Path) -> ArtifactRecord:
        check_rel_path(rel_path)
        logical_path = join_logical_path(self.outputs_prefix, rel_path)
        name = generated_artifact_name(logical_path, self.task_id)
        return await self.put_domain_artifact(rel_path, name, infer_data_type(rel_path), content)

    def artifacts(self) -> list[ArtifactRecord]:
        """Every recorded upload, sorted by logical path (receipt order, §5 #18)."""
        return [self._records[path] for path in sorted(self._records)]

    async def _existing_id(self, logical_path: str, name: str, data_type: str) -> str | None:
        recorded = self._records.get(logical_path)
        if recorded is not None and recorded.id is not None:
            return recorded.id
        try:
            found = await self.domain.list_metadata(name=name, data_type=data_type)
        except NotFoundError:
            return None
        return found[0].id if found else None

    async def _upload(
        self, name: str, data_type: str, content: bytes | Path, existing_id: str | None
    ) -> DataMetadata:
        if isinstance(content, Path) or await self._needs_chunked(name, data_type, content):
            try:
                return await self.domain.upload_chunked(name, data_type, content, existing_id)
            except ChunkedUploadUnsupportedError:
                logger.info("chunked upload unsupported by the server; using a single request")
        data = (
            content if isinstance(content, bytes) else await asyncio.to_thread(content.read_bytes)
        )
        if existing_id is not None:
            return await self.domain.update(existing_id, data)
        return await self.domain.create(name, data_type, data)

    async def _needs_chunked(self, name: str, data_type: str, data: bytes) -> bool:
        """Bytes go chunked only when the server's limits say one request cannot hold them."""
        try:
            info = await self.domain.info()
        except DomainClientError as exc:
            logger.warning("domain server info unavailable (%s); using a single request", exc)
            return False
        if info is None:
            return False
        return _exceeds_limits(info, name, data_type, data)


def _exceeds_limits(info: ServerInfo, name: str, data_type: str, data: bytes) -> bool:
    """True when multipart is not disabled and the part does not fit a single request.

    A missing ``multipart`` key counts as "maybe": the chunked endpoint is tried and a
    404/405/501 falls back (§5 #13).
    """
    upload = info.upload
    if upload.multipart is not None and not upload.multipart.enabled:
        return False
    request_max = upload.request_max_bytes or 0
    data_max = upload.domain_data_max_bytes or 0
    too_big_for_request = (
        request_max > 0 and _single_request_size(name, data_type, data) > request_max
    )
    return too_big_for_request or (data_max > 0 and len(data) > data_max)


def _single_request_size(name: str, data_type: str, data: bytes) -> int:
    """Bytes of the single-request body for one create part (§2.6 sizing rule)."""
    _, probe = build_upload_body([UploadPart.create(name, data_type, b"")])
    return len(probe) + len(data)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
