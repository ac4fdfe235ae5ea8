"""The free-disk check and the cleanup of job folders.

The folder's layout is :class:`pipeline.contract.JobLayout`, shared with the pipeline child.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from app.runner.errors import SplatterJobError

__all__ = ["check_free_disk", "cleanup_tasks_root", "remove_job_root"]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


def check_free_disk(tasks_root: Path, min_free_mb: int) -> int:
    """Returns the free bytes under ``tasks_root``; raises when fewer than ``min_free_mb`` MiB.

    Raises:
        SplatterJobError: ``insufficient disk space: ...`` naming both figures.
    """
    probe = tasks_root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # TASKS_ROOT may not exist yet: measure the disk it will live on
    free = shutil.disk_usage(probe).free
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
    """At start-up: deletes every sub-folder of ``TASKS_ROOT`` (left by a previous process)."""
    if cleanup_disabled or not tasks_root.is_dir():
        return []
    removed = [p for p in tasks_root.iterdir() if p.is_dir() and not p.is_symlink()]
    for folder in removed:
        remove_job_root(folder, cleanup_disabled=False)
    return removed
