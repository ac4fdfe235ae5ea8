"""Inbox entries: hostile names, what a drop contains, when it is stable, its content hash.

Every name in the inbox comes from whoever can write there, so nothing about it is trusted: a
name is used as a path only after :func:`name_problem` found nothing wrong, symlinks and special
files are refused anywhere in a drop (never followed), and the folders the node creates for an
entry are named by :func:`safe_label`, never by the raw name.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MAX_ENTRIES",
    "MAX_NAME_BYTES",
    "Snapshot",
    "StabilityTracker",
    "UnsafeEntryError",
    "content_hash",
    "name_problem",
    "safe_label",
    "snapshot",
]

MAX_NAME_BYTES = 200
"""Longest inbox name accepted (UTF-8 bytes); longer names are refused."""
MAX_ENTRIES = 100_000
"""Most files and folders one drop may hold."""
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_CHUNK = 1024 * 1024

Snapshot = tuple[tuple[str, int, int, int], ...]
"""``(relative path, kind, size, mtime_ns)`` of every entry of a drop, sorted."""


class UnsafeEntryError(ValueError):
    """A drop holds something the node will not read (a symlink, a device, too many files)."""


def name_problem(name: str) -> str | None:
    """Why an inbox name is refused, or ``None`` (``name`` is one directory entry)."""
    if name in (".", "..") or "/" in name or "\x00" in name:
        return "is not a plain file or folder name"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Cf") for c in name):
        return "contains control or undecodable characters"
    return None


def safe_label(name: str, max_chars: int = 60) -> str:
    """A folder-name-safe label for ``name``: ``[A-Za-z0-9._-]`` only, never hidden or empty;
    a short hash of the original is appended whenever characters were changed or cut."""
    stem = _EXTENSION.sub("", name) or name
    label = _LABEL_CHARS.sub("_", stem).strip("._-")[:max_chars] or "capture"
    if label != stem:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        label = f"{label}-{digest}"
    return label


def snapshot(path: Path) -> Snapshot:
    """Sizes and mtimes of ``path`` and everything under it, never following a symlink.

    Raises:
        UnsafeEntryError: a symlink, a special file or more than :data:`MAX_ENTRIES` entries.
    """
    top = os.lstat(path)
    _check_kind(top.st_mode, path.name)
    entries = [("", stat.S_IFMT(top.st_mode), top.st_size, top.st_mtime_ns)]
    if stat.S_ISDIR(top.st_mode):
        _walk(path, "", entries)
    return tuple(sorted(entries))


def _walk(folder: Path, prefix: str, entries: list[tuple[str, int, int, int]]) -> None:
    with os.scandir(folder) as scan:
        for entry in scan:
            info = entry.stat(follow_symlinks=False)
            relative = f"{prefix}{entry.name}"
            _check_kind(info.st_mode, relative)
            entries.append((relative, stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns))
            if len(entries) > MAX_ENTRIES:
                raise UnsafeEntryError(f"holds more than {MAX_ENTRIES} files and folders")
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), f"{relative}/", entries)


def _check_kind(mode: int, where: str) -> None:
    if stat.S_ISLNK(mode):
        raise UnsafeEntryError(f"contains a symlink ({where!r}); symlinks are never followed")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UnsafeEntryError(f"contains {where!r}, which is not a regular file or folder")


def content_hash(path: Path, snap: Snapshot) -> str:
    """``sha256:<hex>`` over every regular file's relative path and bytes (same content,
    same hash, whatever the drop's own name or timestamps)."""
    digest = hashlib.sha256()
    for relative, kind, _size, _mtime in snap:
        if kind != stat.S_IFREG:
            continue
        digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
        with (path / relative if relative else path).open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"


@dataclass
class StabilityTracker:
    """When each inbox entry last changed; an entry is stable after ``stable_s`` unchanged.

    Times are monotonic seconds. ``stable_since`` is when the entry became stable (its last
    change plus ``stable_s``), for the stable → queued latency.
    """

    stable_s: float
    _seen: dict[str, tuple[Snapshot, float]] = field(default_factory=dict)

    def observe(self, name: str, snap: Snapshot, now: float) -> float | None:
        """Records a snapshot; returns when the entry became stable, or ``None`` if not yet."""
        previous = self._seen.get(name)
        if previous is None or previous[0] != snap:
            self._seen[name] = (snap, now)
            changed_at = now
        else:
            changed_at = previous[1]
        stable_at = changed_at + self.stable_s
        return stable_at if now >= stable_at else None

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)

    def keep_only(self, names: set[str]) -> None:
        for gone in set(self._seen) - names:
            del self._seen[gone]
