"""Job intake and bookkeeping: the push envelope, the job service, progress relays."""

from app.jobs.envelope import PushLease, PushTask
from app.jobs.errors import (
    DuplicateTaskError,
    IntakeUnavailableError,
    JobFinishedError,
    QueueFullError,
    TokenNotAcceptedError,
)
from app.jobs.service import JobService, PushContextFactory

__all__ = [
    "DuplicateTaskError",
    "IntakeUnavailableError",
    "JobFinishedError",
    "JobService",
    "PushContextFactory",
    "PushLease",
    "PushTask",
    "QueueFullError",
    "TokenNotAcceptedError",
]
