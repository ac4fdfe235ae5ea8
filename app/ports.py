"""The runner's one port: the task context it is handed, whichever door the job came through.

The lease door passes ``domain_client``'s ``TaskContext`` (its lease kept current by
heartbeats); the push door passes a :class:`~app.jobs.push_context.PushTaskContext` over the
pushed envelope. Both carry the same ``domain_client`` models (``Lease``, ``TaskStorage``,
``ProgressReporter``); this protocol names the members the runner uses, read-only.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from domain_client.delivery import ProgressReporter
from domain_client.models import Lease
from domain_client.storage import TaskStorage

__all__ = ["JobContextView", "TaskContextView"]


class JobContextView(Protocol):
    """What every job step needs, whichever door: a reporter and the cancel flag (the watch
    door's jobs have no lease and no domain storage)."""

    @property
    def reporter(self) -> ProgressReporter: ...
    @property
    def cancelled(self) -> asyncio.Event: ...


class TaskContextView(JobContextView, Protocol):
    """What a handler receives: the lease, storage, a reporter and the cancel flag."""

    @property
    def lease(self) -> Lease: ...
    @property
    def storage(self) -> TaskStorage: ...
