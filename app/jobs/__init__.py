"""Job intake and bookkeeping: the push envelope, the job service, progress relays."""

from app.jobs.envelope import PushLease, PushTask
from app.jobs.service import (
    DuplicateTaskError,
    IntakeUnavailableError,
    JobFinishedError,
    JobService,
    PushContextFactory,
    QueueFullError,
    TokenNotAcceptedError,
)

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
