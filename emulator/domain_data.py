"""The emulated domain server's data rules: queries, single-request uploads, chunked uploads.

Protocol §2.2–§2.7 and §2.12. Limits come from the config and are published by
`/api/v1/info`: `request_max_bytes` bounds one upload request body (and so the part size),
`domain_data_max_bytes` bounds one item; 0 means unlimited. Names and data types follow the
§1.10 rules; with `unique_names`, a second item with the same name and data type is a 409.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import Clock, rfc3339
from emulator.config import EmulatorConfig
from emulator.errors import EmulatorError, bad_request, conflict, not_found, too_large
from emulator.models import PartRef, UploadInitiate
from emulator.multipart import FormPart
from emulator.rules import is_uuid, name_rule_violation
from emulator.storage import DataItem, DataStore

MAX_PART_NUMBER = 10_000


@dataclass
class ChunkedUpload:
    """An initiated chunked upload and the parts received so far (`number → (etag, bytes)`)."""

    id: str
    domain_id: str
    name: str
    data_type: str
    size: int | None
    existing_id: str | None
    part_size: int
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)

    def received_bytes(self) -> int:
        """Bytes held over all parts received."""
        return sum(len(content) for _, content in self.parts.values())


class DomainData:
    """Domain data of every domain, plus the chunked uploads in flight."""

    def __init__(self, config: EmulatorConfig, clock: Clock, store: DataStore) -> None:
        self._config = config
        self._clock = clock
        self.store = store
        self.uploads: dict[str, ChunkedUpload] = {}

    def info(self) -> dict[str, Any]:
        """The `/api/v1/info` body."""
        return {
            "upload": {
                "request_max_bytes": self._config.request_max_bytes,
                "domain_data_max_bytes": self._config.domain_data_max_bytes,
                "multipart": {"enabled": self._config.multipart_enabled},
            }
        }

    # ------------------------------------------------------------ reading

    def query(
        self, domain_id: str, ids: list[str], name: str | None, data_type: str | None
    ) -> list[DataItem]:
        """Items matching every given filter; with `ids`, in the order the ids were asked for."""
        if len(ids) > self._config.max_ids_per_query:
            raise bad_request(f"at most {self._config.max_ids_per_query} ids per request")
        if ids:
            found = [self.store.get(domain_id, data_id) for data_id in dict.fromkeys(ids)]
            items = [item for item in found if item is not None]
        else:
            items = self.store.items(domain_id)
        matches = [
            item
            for item in items
            if (name is None or item.name == name)
            and (data_type is None or item.data_type == data_type)
        ]
        if not matches and self._config.empty_list_404:
            raise not_found("no domain data matches the query")
        return matches

    def item(self, domain_id: str, data_id: str) -> DataItem:
        """One item's metadata; 404 if unknown."""
        found = self.store.get(domain_id, data_id)
        if found is None:
            raise not_found(f"unknown domain data id {data_id} in domain {domain_id}")
        return found

    def chunks(self, item: DataItem) -> Iterator[bytes]:
        """An item's content, chunk by chunk."""
        return self.store.chunks(item)

    def content(self, domain_id: str, data_id: str) -> bytes:
        """An item's whole content (Python API)."""
        return b"".join(self.chunks(self.item(domain_id, data_id)))

    def delete(self, domain_id: str, data_id: str) -> None:
        """Remove an item; 404 if unknown."""
        if not self.store.delete(domain_id, data_id):
            raise not_found(f"unknown domain data id {data_id} in domain {domain_id}")

    # ------------------------------------------------------------ single-request uploads

    def create(self, domain_id: str, parts: list[FormPart]) -> list[DataItem]:
        """`POST …/data`: every part needs `name` and `data-type`; all parts or none are stored."""
        planned: list[tuple[DataItem, bytes]] = []
        for index, part in enumerate(parts, start=1):
            name = _required_param(part, "name", index)
            data_type = _required_param(part, "data-type", index)
            self._check_names(name, data_type)
            self._check_item_size(name, len(part.content))
            taken = {(item.name, item.data_type) for item, _ in planned}
            self._check_unique(domain_id, name, data_type, None, taken)
            planned.append(
                (self._new_item(domain_id, name, data_type, len(part.content)), part.content)
            )
        return self._store_all(planned)

    def update(self, domain_id: str, parts: list[FormPart]) -> list[DataItem]:
        """`PUT …/data`: every part needs the `id` of an existing item; all parts or none."""
        planned: list[tuple[DataItem, bytes]] = []
        for index, part in enumerate(parts, start=1):
            current = self.item(domain_id, _required_param(part, "id", index))
            name = part.params.get("name", current.name)
            data_type = part.params.get("data-type", current.data_type)
            self._check_names(name, data_type)
            self._check_item_size(name, len(part.content))
            self._check_unique(domain_id, name, data_type, current.id, set())
            planned.append(
                (self._replaced(current, name, data_type, len(part.content)), part.content)
            )
        return self._store_all(planned)

    def seed(self, domain_id: str, name: str, data_type: str, content: bytes) -> DataItem:
        """Admin/Python API: store an item, replacing one with the same name and type. No size
        limits apply (seeding is not an upload)."""
        if not is_uuid(domain_id):
            raise bad_request("domain id must be a canonical UUID")
        self._check_names(name, data_type)
        existing = [
            item
            for item in self.store.items(domain_id)
            if item.name == name and item.data_type == data_type
        ]
        item = (
            self._replaced(existing[0], name, data_type, len(content))
            if existing
            else self._new_item(domain_id.lower(), name, data_type, len(content))
        )
        self.store.put(item, content)
        return item

    def _store_all(self, planned: list[tuple[DataItem, bytes]]) -> list[DataItem]:
        for item, content in planned:
            self.store.put(item, content)
        return [item for item, _ in planned]

    def _new_item(self, domain_id: str, name: str, data_type: str, size: int) -> DataItem:
        now = rfc3339(self._clock.now())
        return DataItem(str(uuid.uuid4()), domain_id, name, data_type, size, now, now)

    def _replaced(self, current: DataItem, name: str, data_type: str, size: int) -> DataItem:
        now = rfc3339(self._clock.now())
        return DataItem(
            current.id, current.domain_id, name, data_type, size, current.created_at, now
        )

    # ------------------------------------------------------------ checks

    def _check_names(self, name: str, data_type: str) -> None:
        violation = name_rule_violation("name", name) or name_rule_violation("data_type", data_type)
        if violation:
            raise bad_request(violation)

    def _check_item_size(self, name: str, size: int) -> None:
        limit = self._config.domain_data_max_bytes
        if limit > 0 and size > limit:
            raise too_large(f"item {name!r} is {size} bytes; domain_data_max_bytes is {limit}")

    def _check_unique(
        self,
        domain_id: str,
        name: str,
        data_type: str,
        own_id: str | None,
        taken: set[tuple[str, str]],
    ) -> None:
        if not self._config.unique_names:
            return
        clash = (name, data_type) in taken or any(
            item.name == name and item.data_type == data_type and item.id != own_id
            for item in self.store.items(domain_id)
        )
        if clash:
            raise conflict(f"domain data named {name!r} of type {data_type!r} already exists")

    # ------------------------------------------------------------ chunked uploads

    def initiate(self, domain_id: str, body: UploadInitiate) -> dict[str, Any]:
        """Start a chunked upload (a create, or an update with `existing_id`)."""
        if not self._config.multipart_enabled:
            raise EmulatorError(501, "chunked uploads are disabled on this server")
        current = self.item(domain_id, body.existing_id) if body.existing_id else None
        name = body.name or (current.name if current else "")
        data_type = body.data_type or (current.data_type if current else "")
        self._check_names(name, data_type)
        if body.size is not None:
            self._check_item_size(name, body.size)
        self._check_unique(domain_id, name, data_type, current.id if current else None, set())
        upload = ChunkedUpload(
            id=uuid.uuid4().hex,
            domain_id=domain_id,
            name=name,
            data_type=data_type,
            size=body.size,
            existing_id=current.id if current else None,
            part_size=self._config.effective_part_size(),
        )
        self.uploads[upload.id] = upload
        return {"upload_id": upload.id, "part_size": upload.part_size}

    def put_part(self, domain_id: str, upload_id: str, number: int, content: bytes) -> str:
        """Store one part (a re-sent number replaces the earlier one); returns its etag."""
        upload = self._upload(domain_id, upload_id)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise bad_request(f"partNumber must be 1–{MAX_PART_NUMBER}, got {number}")
        if not content:
            raise bad_request("a part must not be empty")
        if len(content) > upload.part_size:
            raise too_large(f"part is {len(content)} bytes; part_size is {upload.part_size}")
        etag = hashlib.md5(content, usedforsecurity=False).hexdigest()
        upload.parts[number] = (etag, content)
        self._check_item_size(upload.name, upload.received_bytes())
        return etag

    def complete_upload(self, domain_id: str, upload_id: str, refs: list[PartRef]) -> DataItem:
        """Assemble the listed parts into the item; the upload is then gone."""
        upload = self._upload(domain_id, upload_id)
        content = b"".join(_checked_parts(upload, refs))
        if upload.size is not None and len(content) != upload.size:
            raise bad_request(
                f"parts hold {len(content)} bytes but the upload declared {upload.size}"
            )
        self._check_item_size(upload.name, len(content))
        self._check_unique(domain_id, upload.name, upload.data_type, upload.existing_id, set())
        if upload.existing_id is not None:
            current = self.item(domain_id, upload.existing_id)
            item = self._replaced(current, upload.name, upload.data_type, len(content))
        else:
            item = self._new_item(domain_id, upload.name, upload.data_type, len(content))
        self.store.put(item, content)
        del self.uploads[upload_id]
        return item

    def abort(self, domain_id: str, upload_id: str) -> None:
        """Drop an upload and its parts."""
        self._upload(domain_id, upload_id)
        del self.uploads[upload_id]

    def _upload(self, domain_id: str, upload_id: str) -> ChunkedUpload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.domain_id != domain_id:
            raise not_found(f"unknown upload {upload_id} in domain {domain_id}")
        return upload


def _required_param(part: FormPart, key: str, index: int) -> str:
    value = part.params.get(key)
    if value is None:
        raise bad_request(f"part {index}: Content-Disposition lacks the {key} parameter")
    return value


def _checked_parts(upload: ChunkedUpload, refs: list[PartRef]) -> list[bytes]:
    """The listed parts' bytes after checking order, presence, etags and sizes."""
    numbers = [ref.part_number for ref in refs]
    if numbers != sorted(set(numbers)):
        raise bad_request("parts must be listed in ascending part_number order without repeats")
    contents: list[bytes] = []
    for ref in refs:
        stored = upload.parts.get(ref.part_number)
        if stored is None:
            raise bad_request(f"part {ref.part_number} was never uploaded")
        if ref.etag.strip('"') != stored[0]:
            raise bad_request(f"etag of part {ref.part_number} does not match the uploaded part")
        contents.append(stored[1])
    for ref, content in zip(refs[:-1], contents[:-1], strict=True):
        if len(content) != upload.part_size:
            raise bad_request(
                f"part {ref.part_number} is {len(content)} bytes; every part but the last "
                f"must be part_size ({upload.part_size}) bytes"
            )
    return contents
