"""``GET /jobs/{id}/events``: a job's progress, events and end as Server-Sent Events.

The stream carries what ``progress_url`` receives, for any HTTP client:

- ``event: job`` (no id): the job's state, latest progress JSON and held-out metrics, first on
  connect and then whenever the progress changes;
- ``event: log`` with ``id: <seq>``: one stored job event (``{"seq", "at", ...event}``);
- ``event: snapshot`` with ``id: <seq>``: a training snapshot was written (the event's fields
  plus ``url``, the file to reload);
- ``event: end``: the job's final state; the server then closes the stream.

A reconnecting client sends ``Last-Event-ID`` (browsers do it by themselves) and gets only the
events after it; ``?last_event_id=`` does the same for clients that cannot set headers.
A comment line every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.records import JobEvent
from app.store import JobStore
from app.viewer.scenes import job_summary

__all__ = ["job_event_stream", "parse_last_event_id", "sse"]

KEEPALIVE_S = 15.0


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One Server-Sent Event (``data`` as one JSON line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def parse_last_event_id(header: str | None, query: int | None) -> int:
    """The sequence number to resume after (0: from the start)."""
    for value in (header, query):
        try:
            number = int(str(value).strip())
        except ValueError:
            continue
        if number >= 0:
            return number
    return 0


async def job_event_stream(
    store: JobStore,
    job_key: str,
    after: int,
    base: str,
    poll_s: float = 0.25,
    is_disconnected: Callable[[], Any] | None = None,
) -> AsyncIterator[str]:
    """Yields the stream above until the job has ended and every event was sent."""
    last_progress: str | None = None
    last_sent = time.monotonic()
    while True:
        record = store.get(job_key)
        progress = json.dumps(record.progress, sort_keys=True) + record.state
        changed = progress != last_progress
        if changed:
            last_progress = progress
            yield sse("job", job_summary(record, store.events(job_key)))
        events = store.events(job_key, after=after)
        for event in events:
            after = event.seq
            yield _event(event, base)
        if not record.active:
            yield sse("end", job_summary(record, store.events(job_key)))
            return
        if events or changed:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_S:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if is_disconnected is not None and await is_disconnected():
            return
        await asyncio.sleep(poll_s)


def _event(event: JobEvent, base: str) -> str:
    data = {"seq": event.seq, "at": event.at, **event.event}
    if "snapshot" in event.event:
        data["url"] = f"{base}/files/{event.event['snapshot']}"
        return sse("snapshot", data, event.seq)
    return sse("log", data, event.seq)
