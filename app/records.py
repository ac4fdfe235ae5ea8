"""Internal job records: what the store keeps and the service passes around (never the wire)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from domain_client.models import ArtifactRecord

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "JobEvent",
    "JobRecord",
    "JobSource",
    "JobState",
    "NewJob",
    "utc_now",
]

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""Closed set: ``queued → running → succeeded | failed | cancelled``; a queued job may also be
cancelled or failed directly, and a push job a restart or the node's stop interrupted goes from
``running`` back to ``queued`` (:meth:`JobStore.requeue`)."""
JobSource = Literal["lease", "push", "watch"]
"""Which door the job came through: a DMS lease, ``POST /splatter/colmap/v1`` or a capture
dropped into ``WATCH_DIR/inbox/``."""

ALL_STATES: tuple[JobState, ...] = get_args(JobState)
ACTIVE_STATES: tuple[JobState, ...] = ("queued", "running")
TERMINAL_STATES: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")


def utc_now() -> str:
    """Now as RFC 3339 UTC with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class JobEvent:
    """One event a job logged (``{"level", "stage", "message", ...}``), numbered from 1."""

    seq: int
    at: str
    event: dict[str, Any]


@dataclass(frozen=True)
class NewJob:
    """What is known about a job when it is accepted."""

    source: JobSource
    task_id: str
    capability: str
    job_id: str | None = None
    domain_id: str | None = None
    progress_url: str | None = None


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: identity, state and timestamps (RFC 3339 UTC), progress, outcome."""

    id: str
    source: JobSource
    task_id: str
    job_id: str | None
    domain_id: str | None
    capability: str
    state: JobState
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    progress_url: str | None = None
    artifacts: tuple[ArtifactRecord, ...] = ()
    """The uploads, as in the DMS receipt (protocol §1.9)."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES
