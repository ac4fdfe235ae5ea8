"""Which job folders outlive their run, so that a re-leased task resumes instead of restarting.

A job folder carries ``.resume.json`` (:data:`MARKER`) from the moment its workspace is
prepared: ``{"task_id", "state": "running" | "interrupted", "reason", "updated_at"}``
(``updated_at``: seconds since the epoch). The runner removes the folder, marker and all, when
the job ends for good (success, a deterministic failure, a DMS or user cancel); when the run was
interrupted (the node shutting down, a lost lease, a required upload that failed) it marks the
folder ``interrupted`` and keeps it. A node killed outright leaves ``running``: the next start
turns that into ``interrupted`` (``node restarted``), timed from that start.

Kept folders live ``RESUME_RETENTION_HOURS`` from their interruption, and give way earlier,
oldest first, when a new job needs the disk space (``MIN_FREE_DISK_MB``). The same task id,
leased again, finds its folder: finished downloads, frames, checkpoint and exports are reused.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.runner.workspace import RESUME_MARKER, remove_job_root

__all__ = [
    "MARKER",
    "ResumeMarker",
    "evict_oldest",
    "mark_interrupted",
    "mark_running",
    "read_marker",
    "settle_at_start_up",
    "sweep_expired",
]

log = logging.getLogger(__name__)

MARKER = RESUME_MARKER
MarkerState = Literal["running", "interrupted"]


@dataclass(frozen=True)
class ResumeMarker:
    """What ``.resume.json`` says about one job folder."""

    task_id: str
    state: MarkerState
    reason: str | None
    updated_at: float

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.updated_at)


def read_marker(root: Path) -> ResumeMarker | None:
    """The folder's marker, or ``None`` when it has none or an unreadable one."""
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
        state = data["state"]
        if state not in ("running", "interrupted"):
            raise ValueError(f"unknown state {state!r}")
        return ResumeMarker(
            str(data["task_id"]), state, data.get("reason"), float(data["updated_at"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable resume marker", extra={"job_root": str(root), "error": str(exc)})
        return None


def _write(root: Path, marker: ResumeMarker) -> None:
    """Atomic: a crash leaves the old marker or the new one, never half of one."""
    body = {
        "task_id": marker.task_id, "state": marker.state,
        "reason": marker.reason, "updated_at": marker.updated_at,
    }  # fmt: skip
    partial = root / f"{MARKER}.partial"
    partial.write_text(json.dumps(body), encoding="utf-8")
    partial.replace(root / MARKER)


def mark_running(root: Path, task_id: str, now: float | None = None) -> ResumeMarker | None:
    """Marks a job folder in use; returns the marker it had (a kept folder being resumed)."""
    before = read_marker(root)
    _write(root, ResumeMarker(task_id, "running", None, time.time() if now is None else now))
    return before


def mark_interrupted(root: Path, reason: str, now: float | None = None) -> None:
    """Keeps the folder for a resume, saying why (best effort: a failure only logs)."""
    before = read_marker(root)
    task_id = before.task_id if before is not None else root.name
    stamp = time.time() if now is None else now
    try:
        _write(root, ResumeMarker(task_id, "interrupted", reason, stamp))
    except OSError as exc:
        log.warning("cannot mark job folder", extra={"job_root": str(root), "error": str(exc)})


def _kept_folders(tasks_root: Path) -> list[tuple[Path, ResumeMarker]]:
    if not tasks_root.is_dir():
        return []
    found = []
    for folder in tasks_root.iterdir():
        if folder.is_dir() and not folder.is_symlink():
            marker = read_marker(folder)
            if marker is not None:
                found.append((folder, marker))
    return sorted(found, key=lambda pair: pair[1].updated_at)


def settle_at_start_up(tasks_root: Path, retention_s: float, now: float | None = None) -> None:
    """At start-up: folders a killed node left ``running`` become ``interrupted`` (from now);
    expired ones go."""
    stamp = time.time() if now is None else now
    for folder, marker in _kept_folders(tasks_root):
        if marker.state == "running":
            mark_interrupted(folder, "node restarted", stamp)
    sweep_expired(tasks_root, retention_s, stamp)


def sweep_expired(
    tasks_root: Path, retention_s: float, now: float | None = None, keep: Path | None = None
) -> list[Path]:
    """Removes kept folders interrupted ``retention_s`` or more ago; returns them."""
    stamp = time.time() if now is None else now
    expired = [
        folder
        for folder, marker in _kept_folders(tasks_root)
        if marker.state == "interrupted" and marker.age_s(stamp) >= retention_s and folder != keep
    ]
    for folder in expired:
        log.info("resume retention expired; removing", extra={"job_root": str(folder)})
        remove_job_root(folder, cleanup_disabled=False)
    return expired


def evict_oldest(tasks_root: Path, enough: Callable[[], bool], keep: Path) -> list[Path]:
    """Removes interrupted folders, oldest first, until ``enough()``; never ``keep``."""
    evicted: list[Path] = []
    for folder, marker in _kept_folders(tasks_root):
        if enough():
            break
        if folder == keep or marker.state != "interrupted":
            continue
        log.warning("disk pressure: removing a kept job folder", extra={"job_root": str(folder)})
        remove_job_root(folder, cleanup_disabled=False)
        evicted.append(folder)
    return evicted
