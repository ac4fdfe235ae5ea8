"""A push job split in two: the half the store keeps, and the half only memory holds.

The store keeps a push job's envelope without its domain token (:func:`stored_envelope`); the
token, replaceable with ``PUT /jobs/{id}/token``, lives in the job's :class:`PushJob` while the
job is queued or running, and is gone when the process ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.jobs.envelope import PushLease
from app.jobs.push_token import PushToken

__all__ = ["PushJob", "stored_envelope"]

#: The envelope fields the store never keeps: the domain token (and its expiry, meaningless
#: without it).
_SECRET_FIELDS = frozenset({"access_token", "access_token_expires_at"})


def stored_envelope(lease: PushLease) -> dict[str, Any]:
    """A push envelope as the store keeps it: every field but the domain token."""
    return lease.model_dump(mode="json", exclude=set(_SECRET_FIELDS))


@dataclass(frozen=True)
class PushJob:
    """An active (queued or running) push job's in-memory half: what the store never sees."""

    lease: PushLease
    progress_url: str | None
    token: PushToken
    restored: asyncio.Event | None = None
    """Set for a job queued again after a restart (it may have a kept job folder): ends its
    wait for a token when the job is cancelled."""
    sigterm_requeues: int = 0
    """How often a SIGTERM the node did not send stopped its child and it was queued again
    (:meth:`app.jobs.service.JobService._queue_again`); it then has a kept job folder."""
