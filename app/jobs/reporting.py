"""Where a job's progress and events go: the store, the lease's reporter, a ``progress_url``.

:class:`JobReporter` is the ``ProgressReporter`` the runner sees for every recorded job: it
writes to SQLite and passes through to the relays: the engine's reporter in lease mode (which
heartbeats), a :class:`ProgressForwarder` in push mode. The forwarder POSTs
``{"progress": {...}, "events": [...]}`` (the shape of a DMS heartbeat body) whenever progress
changes, with the heartbeat driver's delivery rules (``domain_client.delivery.Outbox``): one
request in flight at a time, later changes coalesced to the latest, events resent until a 2xx
acknowledges them; failures are logged and never touch the job. :func:`relayed_reporter` builds
a push job's reporter with its relay and closes the relay after the job's block.
:class:`TokenWaitReporter` tells a push job's reporter when the job waits for a domain token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from app.store import JobStore
from domain_client.delivery import Outbox, ProgressReporter, json_safe

__all__ = ["JobReporter", "ProgressForwarder", "TokenWaitReporter", "relayed_reporter"]

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
        self._in_doubt = False  # the last batch taken was not acknowledged (failed, cut off)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"progress-forwarder {self._url}")

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        self._outbox.set_progress(progress)

    def log_event(self, event: Mapping[str, Any]) -> None:
        self._outbox.add_event(event)

    async def close(self, flush_timeout_s: float = 5.0) -> None:
        """Stops after one last attempt to deliver what the receiver has not acknowledged:
        what changed since the last POST, or the last POST itself when it failed or this
        close cut it off."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._outbox.changed.is_set() or self._in_doubt:
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
        self._in_doubt = True
        try:
            response = await self._http.post(self._url, json=body, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            log.warning("progress_url unreachable", extra={"url": self._url, "error": str(exc)})
            return
        if response.is_success:
            self._outbox.acknowledge(batch)
            self._in_doubt = False
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


@contextlib.asynccontextmanager
async def relayed_reporter(
    store: JobStore,
    http: httpx.AsyncClient,
    job_key: str,
    progress_url: str | None,
    *,
    live: bool = True,
) -> AsyncIterator[JobReporter]:
    """A job's reporter that also relays to ``progress_url`` (none without one).

    A live relay POSTs as progress changes; one that is not sends only when the block ends.
    Either way the block's end closes it after one last delivery (at most about 5 s).
    """
    forwarder = None if progress_url is None else ProgressForwarder(http, progress_url)
    if forwarder is not None and live:
        forwarder.start()
    try:
        yield JobReporter(store, job_key, [] if forwarder is None else [forwarder])
    finally:
        if forwarder is not None:
            await forwarder.close()


class TokenWaitReporter:
    """Tells a job's reporter (store, ``progress_url``) that it waits for a token, and when
    it got one (the progress before the wait is restored); a ``TokenWaitListener``.

    Args:
        store: where the job's progress before the wait is read.
        job_key: the job.
        reporter: the job's reporter.
        cause: why the job waits, the first half of the event's message.
        resumed_status: the progress ``status`` once the token arrived (a restored job goes
            back to the queue: ``"queued"``); ``None`` restores the progress before the wait
            (a running job carries on).
    """

    def __init__(
        self,
        store: JobStore,
        job_key: str,
        reporter: ProgressReporter,
        cause: str = "the domain server refused the token (401)",
        resumed_status: str | None = None,
    ) -> None:
        self._store = store
        self._job_key = job_key
        self._reporter = reporter
        self._cause = cause
        self._resumed_status = resumed_status
        self._waiting = 0
        self._before: dict[str, Any] = {}

    def waiting(self, wait_s: float) -> None:
        """A request of the job starts to wait up to ``wait_s`` seconds."""
        self._waiting += 1
        if self._waiting > 1:
            return  # a parallel request is already waiting and has said so
        self._before = self._store.get(self._job_key).progress
        self._reporter.set_progress(
            {**self._before, "status": "waiting_for_token", "token_wait_s": wait_s}
        )
        self._reporter.log_event(
            {
                "level": "warn",
                "stage": "token",
                "message": f"{self._cause}; waiting up to "
                f"{wait_s:g} s for PUT /jobs/{self._job_key}/token",
            }
        )

    def resumed(self) -> None:
        """A waiting request got a new token."""
        self._waiting = max(0, self._waiting - 1)
        if self._waiting:
            return
        self._reporter.log_event(
            {"level": "info", "stage": "token", "message": "new domain token received"}
        )
        if self._resumed_status is None:
            self._reporter.set_progress(self._before)
        else:
            self._reporter.set_progress({**self._before, "status": self._resumed_status})
