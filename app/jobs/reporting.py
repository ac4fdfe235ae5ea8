"""Where a job's progress and events go: the store, the lease's reporter, a ``progress_url``.

:class:`JobReporter` is the ``ProgressReporter`` the runner sees for every recorded job: it
writes to SQLite and passes through to the relays: the engine's reporter in lease mode (which
heartbeats), a :class:`ProgressForwarder` in push mode. The forwarder POSTs
``{"progress": {...}, "events": [...]}`` (the shape of a DMS heartbeat body) whenever progress
changes, with the heartbeat driver's delivery rules (``domain_client.delivery.Outbox``): one
request in flight at a time, later changes coalesced to the latest, events resent until a 2xx
acknowledges them; failures are logged and never touch the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from app.store import JobStore
from domain_client.delivery import Outbox, ProgressReporter, json_safe

__all__ = ["JobReporter", "ProgressForwarder"]

log = logging.getLogger(__name__)

_MAX_PENDING_EVENTS = 1000


class ProgressForwarder:
    """POSTs a job's progress to a URL as it changes (best effort; a ``ProgressReporter``).

    Args:
        http: the shared client.
        url: where to POST.
        timeout_s: per-request timeout in seconds.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, timeout_s: float = 10.0) -> None:
        self._http = http
        self._url = url
        self._timeout_s = timeout_s
        self._outbox = Outbox(max_events=_MAX_PENDING_EVENTS)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"progress-forwarder {self._url}")

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        self._outbox.set_progress(progress)

    def log_event(self, event: Mapping[str, Any]) -> None:
        self._outbox.add_event(event)

    async def close(self, flush_timeout_s: float = 5.0) -> None:
        """Stops after one last attempt to deliver what changed since the last POST."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._outbox.changed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deliver_once(), flush_timeout_s)

    async def _run(self) -> None:
        while True:
            await self._outbox.changed.wait()
            await self.deliver_once()

    async def deliver_once(self) -> None:
        """POST the latest progress and every unacknowledged event once."""
        batch = self._outbox.take()
        body = {"progress": batch.progress, "events": batch.events}
        try:
            response = await self._http.post(self._url, json=body, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            log.warning("progress_url unreachable", extra={"url": self._url, "error": str(exc)})
            return
        if response.is_success:
            self._outbox.acknowledge(batch)
        else:
            log.warning(
                "progress_url refused the update",
                extra={"url": self._url, "status": response.status_code},
            )


class JobReporter:
    """Records a job's progress and events, and relays them (``ProgressReporter``).

    Everything is made UTF-8-safe first (:func:`json_safe`): a child's error naming an
    undecodable file must not break the store, the API or a relay.
    """

    def __init__(
        self, store: JobStore, job_key: str, relays: Sequence[ProgressReporter] = ()
    ) -> None:
        self._store = store
        self._job_key = job_key
        self._relays = tuple(relays)

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        clean: dict[str, Any] = json_safe(progress)
        self._store.set_progress(self._job_key, clean)
        for relay in self._relays:
            relay.set_progress(clean)

    def log_event(self, event: Mapping[str, Any]) -> None:
        clean: dict[str, Any] = json_safe(event)
        self._store.add_event(self._job_key, clean)
        for relay in self._relays:
            relay.log_event(clean)
