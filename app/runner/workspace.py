"""The job folder (protocol §3.4), the free-disk check and cleanup.

::

    <TASKS_ROOT>/<task_id>/
        .input/                                  materialised input CID (removed once read)
        datasets/<scan_id>/Frames.mp4            one folder per recording
        refined/global/refined_sfm_combined/     {frames,images,cameras,points3D,rigs}.bin
        refined/splatter/                        splat_rot.splat (required), previews (optional)
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.runner.errors import SplatterJobError

__all__ = [
    "RESUME_MARKER",
    "JobLayout",
    "check_free_disk",
    "cleanup_tasks_root",
    "free_disk_bytes",
    "remove_job_root",
]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
#: The keep-marker of a job folder (written and read by :mod:`app.runner.retention`).
RESUME_MARKER = ".resume.json"


@dataclass(frozen=True)
class JobLayout:
    """Paths of one job folder."""

    root: Path

    @classmethod
    def for_task(cls, tasks_root: Path, task_id: str) -> JobLayout:
        return cls(tasks_root / task_id)

    @property
    def input_dir(self) -> Path:
        return self.root / ".input"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def colmap_dir(self) -> Path:
        return self.root / "refined" / "global" / "refined_sfm_combined"

    @property
    def splatter_dir(self) -> Path:
        return self.root / "refined" / "splatter"

    @property
    def splat_file(self) -> Path:
        return self.splatter_dir / "splat_rot.splat"

    def recording(self, scan_id: str) -> Path:
        return self.datasets / scan_id / "Frames.mp4"

    def has_datasets(self) -> bool:
        """True when ``datasets/`` holds at least one entry."""
        return self.datasets.is_dir() and any(self.datasets.iterdir())


def free_disk_bytes(tasks_root: Path) -> int:
    """Free bytes on the disk ``tasks_root`` lives (or will live) on."""
    probe = tasks_root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # TASKS_ROOT may not exist yet: measure the disk it will live on
    return shutil.disk_usage(probe).free


def check_free_disk(tasks_root: Path, min_free_mb: int) -> int:
    """Returns the free bytes under ``tasks_root``; raises when fewer than ``min_free_mb`` MiB.

    Raises:
        SplatterJobError: ``insufficient disk space: ...`` naming both figures.
    """
    free = free_disk_bytes(tasks_root)
    if free < min_free_mb * _MIB:
        raise SplatterJobError(
            f"insufficient disk space: {free / _MIB:.0f} MiB free under {tasks_root}, "
            f"{min_free_mb} MiB required (MIN_FREE_DISK_MB)"
        )
    return free


def remove_job_root(root: Path, cleanup_disabled: bool) -> None:
    """Deletes a job folder after its run, unless cleanup is disabled (best effort)."""
    if cleanup_disabled:
        log.info("task cleanup disabled; leaving workspace on disk", extra={"job_root": str(root)})
        return
    try:
        shutil.rmtree(root)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning(
            "failed to remove task workspace", extra={"job_root": str(root), "error": str(exc)}
        )


def cleanup_tasks_root(tasks_root: Path, cleanup_disabled: bool) -> list[Path]:
    """At start-up: deletes the sub-folders of ``TASKS_ROOT`` a previous process left, except
    those kept for a resume (they hold ``.resume.json``: :mod:`app.runner.retention`)."""
    if cleanup_disabled or not tasks_root.is_dir():
        return []
    removed = [
        p
        for p in tasks_root.iterdir()
        if p.is_dir() and not p.is_symlink() and not (p / RESUME_MARKER).is_file()
    ]
    for folder in removed:
        remove_job_root(folder, cleanup_disabled=False)
    return removed
