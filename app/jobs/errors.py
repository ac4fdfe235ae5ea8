"""What the job service refuses: one exception per answer (mapped in :mod:`app.api.errors`).

``IntakeUnavailableError`` (503: shutting down), ``DuplicateTaskError`` (409: the task is
active), ``QueueFullError`` (429 with ``Retry-After``), ``JobFinishedError`` (409: nothing left
to cancel or hand a token to), ``TokenNotAcceptedError`` (409: a lease job's token is DMS's).
"""

from __future__ import annotations

from app.records import JobRecord

__all__ = [
    "DuplicateTaskError",
    "IntakeUnavailableError",
    "JobFinishedError",
    "QueueFullError",
    "TokenNotAcceptedError",
]


class IntakeUnavailableError(RuntimeError):
    """The push door cannot take jobs now (the node is shutting down)."""


class DuplicateTaskError(RuntimeError):
    """A job for this DMS task is already queued or running."""

    def __init__(self, task_id: str, job: JobRecord, waiting_for_token: bool = False) -> None:
        hint = (
            "; it waits for a domain token after a node restart: PUT /jobs/{id}/token"
            if waiting_for_token
            else ""
        )
        super().__init__(f"task {task_id} is already {job.state} as job {job.id}{hint}")
        self.job = job


class JobFinishedError(RuntimeError):
    """The job has already ended; it cannot be cancelled."""


class QueueFullError(RuntimeError):
    """``SPLATTER_MAX_QUEUED`` push jobs are already waiting; try again after ``retry_after_s``."""

    def __init__(self, queued: int, retry_after_s: int) -> None:
        super().__init__(
            f"{queued} push jobs are already queued (SPLATTER_MAX_QUEUED); "
            f"retry in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class TokenNotAcceptedError(RuntimeError):
    """The job takes no pushed token (a lease job: DMS heartbeats rotate its token)."""
