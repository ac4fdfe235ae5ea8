"""The job folder's safety rules, the free-disk check and cleanup.

The folder's layout (protocol §3.4) is :class:`pipeline.contract.JobLayout`, shared with the
pipeline child; this module decides where a task's folder may be and makes and removes it.

A job folder is always exactly ``<TASKS_ROOT>/<task uuid>``: a task id that is no UUID is
refused before any path is built (:func:`job_folder_name`), and every creation or deletion of a
job folder goes through :func:`prove_job_folder` first, so a hostile id (``/``, ``../data``) or a
symlink planted under TASKS_ROOT can never make the node create or delete anything else.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from app.runner.errors import SplatterJobError
from pipeline.contract import JobLayout

__all__ = [
    "RESUME_MARKER",
    "UnsafeJobFolderError",
    "check_free_disk",
    "cleanup_tasks_root",
    "create_job_folder",
    "free_disk_bytes",
    "job_folder_name",
    "job_layout",
    "prove_job_folder",
    "remove_job_root",
]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: The keep-marker of a job folder (written and read by :mod:`app.runner.retention`).
RESUME_MARKER = ".resume.json"


class UnsafeJobFolderError(SplatterJobError):
    """A task id or a path that is not ``<TASKS_ROOT>/<uuid>``; nothing was created or deleted."""


def job_folder_name(task_id: str) -> str:
    """The folder name of a task: its id, which must be a UUID (``8-4-4-4-12`` hex digits).

    Raises:
        UnsafeJobFolderError: ``invalid task id "...": a task id must be a UUID ...``.
    """
    if not _UUID.fullmatch(task_id.lower()):
        raise UnsafeJobFolderError(
            f"invalid task id {_quote(task_id)}: a task id must be a UUID (protocol §1); "
            "no job folder was made"
        )
    return task_id.lower()


def prove_job_folder(tasks_root: Path, folder: Path) -> Path:
    """Returns ``folder`` once it is proven to be ``<tasks_root>/<uuid>`` and no symlink.

    Call it before creating or deleting a job folder.

    Raises:
        UnsafeJobFolderError: anything else (the message names the path).
    """
    inside = folder.parent.resolve() == tasks_root.resolve()
    if not (inside and _UUID.fullmatch(folder.name)) or folder.is_symlink():
        raise UnsafeJobFolderError(
            f"refusing to touch {_quote(str(folder))}: not a job folder <TASKS_ROOT>/<uuid> "
            f"under {tasks_root}"
        )
    return folder


def _quote(text: str) -> str:
    return repr(text[:200])


def job_layout(tasks_root: Path, task_id: str) -> JobLayout:
    """The layout of ``<tasks_root>/<task_id>``, proven (:func:`prove_job_folder`).

    Raises:
        UnsafeJobFolderError: the task id is no UUID.
    """
    return JobLayout(prove_job_folder(tasks_root, tasks_root / job_folder_name(task_id)))


def create_job_folder(layout: JobLayout) -> None:
    """Makes the job folder (and TASKS_ROOT), after proving the path once more.

    Raises:
        SplatterJobError: the folder cannot be created or is no job folder.
    """
    prove_job_folder(layout.root.parent, layout.root)
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplatterJobError(f"create job root {layout.root}") from exc
    prove_job_folder(layout.root.parent, layout.root)  # still no symlink once it exists


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


def remove_job_root(root: Path, cleanup_disabled: bool, tasks_root: Path | None = None) -> None:
    """Deletes a job folder after its run, unless cleanup is disabled (best effort).

    Only a proven ``<tasks_root>/<uuid>`` folder (``tasks_root`` defaults to ``root``'s parent)
    is deleted; anything else is logged and left alone.
    """
    if cleanup_disabled:
        log.info("task cleanup disabled; leaving workspace on disk", extra={"job_root": str(root)})
        return
    try:
        prove_job_folder(root.parent if tasks_root is None else tasks_root, root)
    except UnsafeJobFolderError as exc:
        log.error("job folder not removed", extra={"job_root": str(root), "error": str(exc)})
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
    """At start-up: deletes the job folders (UUID-named sub-folders, no symlinks) of
    ``TASKS_ROOT`` left by a previous process, except those kept for a resume (they hold
    ``.resume.json``: :mod:`app.runner.retention`); anything else there is left alone."""
    if cleanup_disabled or not tasks_root.is_dir():
        return []
    removed = [
        p
        for p in sorted(tasks_root.iterdir())
        if _is_job_folder(tasks_root, p) and not (p / RESUME_MARKER).is_file()
    ]
    for folder in removed:
        remove_job_root(folder, cleanup_disabled=False, tasks_root=tasks_root)
    return removed


def _is_job_folder(tasks_root: Path, path: Path) -> bool:
    try:
        prove_job_folder(tasks_root, path)
    except UnsafeJobFolderError:
        return False
    return path.is_dir()
