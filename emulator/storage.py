"""Where the emulated domain server keeps domain data: in memory, or as files in a folder.

Folder layout (`--data-dir DIR`): `DIR/domains/<domain_id>/<data_id>.bin` holds the content and
`<data_id>.json` the metadata (protocol §2.4). Items found there at start-up are served again,
so seeded data survives a restart. Writes go to a temporary file first and are renamed into
place, so a reader never sees half an item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from emulator.multipart import DownloadPart

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DataItem:
    """Metadata of one stored item, exactly the fields of protocol §2.4."""

    id: str
    domain_id: str
    name: str
    data_type: str
    size: int
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """The wire Metadata object."""
        return asdict(self)

    def download_part(self) -> DownloadPart:
        """The Content-Disposition parameters of this item in a multipart download."""
        return DownloadPart(
            name=self.name,
            data_type=self.data_type,
            id=self.id,
            domain_id=self.domain_id,
            size=self.size,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def renamed(self, name: str, data_type: str) -> DataItem:
        """A copy with another name and data type."""
        return replace(self, name=name, data_type=data_type)


class MemoryStore:
    """Items and their bytes in a dict, in insertion order."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[DataItem, bytes]] = {}

    def items(self, domain_id: str) -> list[DataItem]:
        """Every item of a domain, oldest first."""
        return [item for (domain, _), (item, _) in self._items.items() if domain == domain_id]

    def get(self, domain_id: str, data_id: str) -> DataItem | None:
        """One item's metadata, or None."""
        found = self._items.get((domain_id, data_id))
        return found[0] if found else None

    def put(self, item: DataItem, content: bytes) -> None:
        """Create or replace an item (a replaced item keeps its place in the order)."""
        self._items[(item.domain_id, item.id)] = (item, content)

    def delete(self, domain_id: str, data_id: str) -> bool:
        """Remove an item; False if there was none."""
        return self._items.pop((domain_id, data_id), None) is not None

    def chunks(self, item: DataItem) -> Iterator[bytes]:
        """The item's content in chunks of at most `CHUNK_BYTES`."""
        content = self._items[(item.domain_id, item.id)][1]
        for start in range(0, len(content), CHUNK_BYTES):
            yield content[start : start + CHUNK_BYTES]


class DirectoryStore:
    """Items as files under `root/domains/<domain_id>/`; metadata also indexed in memory."""

    def __init__(self, root: Path) -> None:
        self._root = root / "domains"
        self._root.mkdir(parents=True, exist_ok=True)
        self._index: dict[tuple[str, str], DataItem] = {}
        for item in sorted(self._load(), key=lambda found: (found.created_at, found.id)):
            self._index[(item.domain_id, item.id)] = item

    def _load(self) -> Iterator[DataItem]:
        for meta_path in self._root.glob("*/*.json"):
            if meta_path.with_suffix(".bin").is_file():
                yield DataItem(**json.loads(meta_path.read_text(encoding="utf-8")))

    def items(self, domain_id: str) -> list[DataItem]:
        """Every item of a domain, oldest first."""
        return [item for (domain, _), item in self._index.items() if domain == domain_id]

    def get(self, domain_id: str, data_id: str) -> DataItem | None:
        """One item's metadata, or None."""
        return self._index.get((domain_id, data_id))

    def put(self, item: DataItem, content: bytes) -> None:
        """Write content, then metadata, each through a temporary file and a rename."""
        folder = self._root / item.domain_id
        folder.mkdir(exist_ok=True)
        _write_atomically(folder / f"{item.id}.bin", content)
        _write_atomically(folder / f"{item.id}.json", json.dumps(item.to_json()).encode())
        self._index[(item.domain_id, item.id)] = item

    def delete(self, domain_id: str, data_id: str) -> bool:
        """Remove an item's files; False if there was none."""
        if self._index.pop((domain_id, data_id), None) is None:
            return False
        for suffix in (".json", ".bin"):
            (self._root / domain_id / f"{data_id}{suffix}").unlink(missing_ok=True)
        return True

    def chunks(self, item: DataItem) -> Iterator[bytes]:
        """The item's content in chunks of at most `CHUNK_BYTES`.

        The file is opened now, not when iteration starts, so a replacement written meanwhile
        (a new file renamed over the old one) does not change what this reader delivers.
        """
        handle = (self._root / item.domain_id / f"{item.id}.bin").open("rb")
        return _read_chunks(handle)


DataStore = MemoryStore | DirectoryStore


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)


def open_store(data_dir: Path | None) -> DataStore:
    """A `DirectoryStore` under `data_dir`, or a `MemoryStore` when it is None."""
    return DirectoryStore(data_dir) if data_dir is not None else MemoryStore()
