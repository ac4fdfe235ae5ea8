"""Where a job's progress and events go: the store, the lease's reporter, a ``progress_url``.

:class:`JobReporter` is the ``ProgressReporter`` the runner sees for every recorded job: it
writes to SQLite, passes through to the engine's reporter in lease mode (which heartbeats), and
feeds a :class:`ProgressForwarder` in push mode. The forwarder POSTs
``{"progress": {...}, "events": [...]}`` (the shape of a DMS heartbeat body) whenever progress
changes: one request in flight at a time, later changes coalesced to the latest, events
resent until a 2xx acknowledges them; failures are logged and never touch the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from app.ports import ProgressReporter
from app.store import JobStore

__all__ = ["JobReporter", "ProgressForwarder"]

log = logging.getLogger(__name__)

_MAX_PENDING_EVENTS = 1000


class ProgressForwarder:
    """POSTs a job's progress to a URL as it changes (best effort).

    Args:
        http: the shared client.
        url: where to POST.
        timeout_s: per-request timeout in seconds.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, timeout_s: float = 10.0) -> None:
        self._http = http
        self._url = url
        self._timeout_s = timeout_s
        self._progress: dict[str, Any] = {}
        self._events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"progress-forwarder {self._url}")

    def progress(self, progress: dict[str, Any]) -> None:
        self._progress = progress
        self._changed.set()

    def event(self, event: dict[str, Any]) -> None:
        self._events = [*self._events, event][-_MAX_PENDING_EVENTS:]
        self._changed.set()

    async def close(self, flush_timeout_s: float = 5.0) -> None:
        """Stops after one last attempt to deliver what changed since the last POST."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._changed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._post_once(), flush_timeout_s)

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            await self._post_once()

    async def _post_once(self) -> None:
        self._changed.clear()
        events = list(self._events)
        body = {"progress": self._progress, "events": events}
        try:
            response = await self._http.post(self._url, json=body, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            log.warning("progress_url unreachable", extra={"url": self._url, "error": str(exc)})
            return
        if response.is_success:
            self._events = self._events[len(events) :]
        else:
            log.warning(
                "progress_url refused the update",
                extra={"url": self._url, "status": response.status_code},
            )


class JobReporter:
    """Records a job's progress and events, and relays them (``ProgressReporter``)."""

    def __init__(
        self,
        store: JobStore,
        job_key: str,
        *,
        inner: ProgressReporter | None = None,
        forwarder: ProgressForwarder | None = None,
    ) -> None:
        self._store = store
        self._job_key = job_key
        self._inner = inner
        self._forwarder = forwarder

    def set_progress(self, progress: dict[str, Any]) -> None:
        self._store.set_progress(self._job_key, progress)
        if self._inner is not None:
            self._inner.set_progress(progress)
        if self._forwarder is not None:
            self._forwarder.progress(progress)

    def log_event(self, event: dict[str, Any]) -> None:
        self._store.add_event(self._job_key, event)
        if self._inner is not None:
            self._inner.log_event(event)
        if self._forwarder is not None:
            self._forwarder.event(event)
