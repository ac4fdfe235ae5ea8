"""A job's output files for the viewer: where they are, which names may be served, how long.

While a job runs its files are in ``<TASKS_ROOT>/<task_id>/refined/splatter`` (the pipeline
writes them there; ``live.splat`` is the training snapshot). The job folder is removed after
the run, so a succeeded job's outputs are first copied to ``<SPLATTER_DATA_DIR>/outputs/<job
id>`` and kept for ``OUTPUT_RETENTION_HOURS`` (0: never kept), counted from the copy; older
copies are deleted whenever a new one is made and when the node starts.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from app.records import JobRecord
from pipeline.contract import (
    LIVE_SPLAT,
    PREVIEW_ANGLE,
    PREVIEW_CAMERA_PATH,
    PREVIEW_TOP,
    PREVIEW_VIDEO,
    ROTATED_PLY,
    SOG_FILE,
    SPLAT_FILE,
    SPLAT_PLY,
)

__all__ = ["LIVE_FILE", "OUTPUT_FILES", "JobOutputs"]

log = logging.getLogger(__name__)

#: What a finished job serves, in download order (only those that exist).
OUTPUT_FILES: tuple[str, ...] = (
    SPLAT_FILE,
    SPLAT_PLY,
    ROTATED_PLY,
    SOG_FILE,
    PREVIEW_VIDEO,
    PREVIEW_TOP,
    PREVIEW_ANGLE,
    PREVIEW_CAMERA_PATH,
)
#: The training snapshot (served while the job runs).
LIVE_FILE = LIVE_SPLAT
_SERVABLE = frozenset((*OUTPUT_FILES, LIVE_FILE))


class JobOutputs:
    """Finds and keeps jobs' output files.

    Args:
        tasks_root: ``TASKS_ROOT`` (running jobs' folders).
        data_dir: ``SPLATTER_DATA_DIR``; kept copies go to ``<data_dir>/outputs``.
        retention_hours: how long a kept copy lives; 0 keeps none.
        clock: wall-clock seconds (tests pass a fake).
    """

    def __init__(
        self,
        tasks_root: Path,
        data_dir: Path,
        retention_hours: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks_root = tasks_root
        self.kept_root = data_dir / "outputs"
        self._retention_s = retention_hours * 3600.0
        self._now = clock

    def folder(self, record: JobRecord) -> Path | None:
        """The folder holding the job's files now, or ``None`` (none yet, or expired)."""
        if record.active:
            live = self._tasks_root / record.task_id / "refined" / "splatter"
            return live if live.is_dir() else None
        kept = self.kept_root / record.id
        return kept if kept.is_dir() and not self._expired(kept) else None

    def file(self, record: JobRecord, name: str) -> Path | None:
        """The job's file ``name`` if it is one the job produced and it exists now."""
        if name not in _SERVABLE:
            return None
        if name == LIVE_FILE and not record.active:
            return None
        folder = self.folder(record)
        path = None if folder is None else folder / name
        return path if path is not None and path.is_file() else None

    def files(self, record: JobRecord) -> list[Path]:
        """The job's downloadable outputs that exist now (not the snapshot)."""
        folder = self.folder(record)
        if folder is None:
            return []
        return [folder / n for n in OUTPUT_FILES if (folder / n).is_file()]

    def keep(self, job_key: str, splatter_dir: Path) -> Path | None:
        """Copies a succeeded job's outputs to ``<data_dir>/outputs/<job_key>`` (best effort)."""
        self.prune()
        if self._retention_s <= 0:
            return None
        target = self.kept_root / job_key
        staging = self.kept_root / f".{job_key}.partial"
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for name in OUTPUT_FILES:
                if (splatter_dir / name).is_file():
                    shutil.copy2(splatter_dir / name, staging / name)
            staging.touch()  # the retention clock starts now
            staging.replace(target)
        except OSError as exc:
            log.warning("job outputs not kept for the viewer", extra={"error": str(exc)})
            shutil.rmtree(staging, ignore_errors=True)
            return None
        return target

    def prune(self) -> list[Path]:
        """Deletes kept copies older than the retention period; returns them."""
        if not self.kept_root.is_dir():
            return []
        expired = [p for p in self.kept_root.iterdir() if p.is_dir() and self._expired(p)]
        for folder in expired:
            shutil.rmtree(folder, ignore_errors=True)
        return expired

    def _expired(self, folder: Path) -> bool:
        try:
            age = self._now() - folder.stat().st_mtime
        except OSError:
            return True
        return age > self._retention_s
