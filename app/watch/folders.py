"""The four folders of ``WATCH_DIR`` and every move between them.

Every path the node creates here is ``<folder>/<safe label>_<UTC timestamp>[-n]``
(:func:`app.watch.entries.safe_label`), proven to sit directly inside its folder before use;
moves are renames within one file system; outputs appear in ``outbox/`` by one rename of a
finished ``.partial`` folder, so a reader never sees half a result.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["WatchFolders", "link_tree", "utc_stamp"]

log = logging.getLogger(__name__)

_STAMP = re.compile(r"_(\d{8}T\d{6}Z)(?:-\d+)?(?:\.|$)")


def utc_stamp(moment: datetime | None = None) -> str:
    """``20261206T193000Z``: the UTC timestamp in every folder name the door creates."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def link_tree(source: Path, target: Path) -> None:
    """Copies ``source`` (a file or a folder without symlinks) to ``target``, hard-linking
    files where the file system allows it (no second copy of a large video on disk)."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@dataclass(frozen=True)
class WatchFolders:
    """``WATCH_DIR`` and its ``inbox/``, ``outbox/``, ``processed/`` and ``error/``."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def error(self) -> Path:
        return self.root / "error"

    def create(self) -> None:
        for folder in (self.inbox, self.outbox, self.processed, self.error):
            folder.mkdir(parents=True, exist_ok=True)

    def fresh(self, folder: Path, label: str, suffix: str = "") -> Path:
        """A path ``folder/<label>_<stamp><suffix>`` that does not exist yet."""
        base = f"{label}_{utc_stamp()}"
        for n in range(1, 1000):
            candidate = folder / f"{base}{'' if n == 1 else f'-{n}'}{suffix}"
            if candidate.parent != folder or candidate.name.startswith("."):
                raise ValueError(f"unsafe watch label {label!r}")
            if not os.path.lexists(candidate):
                return candidate
        raise FileExistsError(f"no free name for {label} in {folder}")

    def publish(self, outputs: Path, label: str, skip: tuple[str, ...] = ()) -> Path:
        """Copies ``outputs`` (less the top-level names in ``skip``) into
        ``outbox/<label>_<stamp>/``; returns it."""
        final = self.fresh(self.outbox, label)
        partial = self.outbox / f".partial-{final.name}"
        shutil.rmtree(partial, ignore_errors=True)

        def ignore(folder: str, names: list[str]) -> list[str]:
            return [n for n in names if n in skip and Path(folder) == outputs]

        shutil.copytree(outputs, partial, symlinks=True, ignore=ignore)
        partial.rename(final)
        return final

    def to_processed(self, entry: Path, label: str, suffix: str) -> Path:
        """Moves a finished input to ``processed/<label>_<stamp><suffix>``."""
        target = self.fresh(self.processed, label, suffix)
        entry.rename(target)
        return target

    def to_error(self, entry: Path, label: str, suffix: str, reason: str, attempts: int) -> Path:
        """Moves an input to ``error/<label>_<stamp>/`` beside an ``error.txt`` that says
        why, when and after how many attempts; returns the folder."""
        folder = self.fresh(self.error, label)
        folder.mkdir()
        (folder / "error.txt").write_text(
            f"reason: {reason}\ntime: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            f"attempts: {attempts}\ninput: {entry.name!r}\n",
            encoding="utf-8",
            errors="backslashreplace",
        )
        if os.path.lexists(entry):
            entry.rename(folder / f"input{suffix}")
        return folder

    def sweep(self, retention_days: float, now: float | None = None) -> list[Path]:
        """Deletes entries of ``outbox/``, ``processed/``, ``error/`` older than the retention
        (by the UTC stamp in their name; their mtime for anything else); returns them."""
        if retention_days <= 0:
            return []
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        deleted = []
        for folder in (self.outbox, self.processed, self.error):
            for entry in _entries(folder):
                if _created_at(entry) < cutoff:
                    _remove(entry)
                    deleted.append(entry)
        return deleted


def _created_at(entry: Path) -> float:
    """When the door made ``entry`` (a moved input keeps its own, older mtime)."""
    match = _STAMP.search(entry.name)
    if match is not None:
        return datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return entry.lstat().st_mtime


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _remove(entry: Path) -> None:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError as exc:
        log.warning("watch retention: cannot remove", extra={"path": str(entry), "error": str(exc)})
