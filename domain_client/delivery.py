"""Coalescing, acknowledged delivery of a task's progress and events.

Two senders share these rules: the heartbeat driver (DMS heartbeats, protocol §1.8) and the
push door's ``progress_url`` poster. Progress has replace semantics (only the latest value is
sent); events are appended and delivered at least once, in order: a send carries every
unacknowledged event, and only the prefix it carried is dropped after the receiver
acknowledged it. Updates arriving while a send is in flight set :attr:`Outbox.changed` and are
coalesced into the next send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Batch", "Outbox", "ProgressReporter", "json_safe"]


class ProgressReporter(Protocol):
    """What a handler uses to report progress (each call may trigger a delivery at once)."""

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        """Replace the progress value (a JSON object)."""
        ...

    def log_event(self, event: Mapping[str, Any]) -> None:
        """Append an event; delivered at least once, in order."""
        ...


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data that encodes as valid UTF-8.

    Values JSON cannot hold become their ``str``; lone surrogates (a child's ``"\\udcff"``
    escape of an undecodable file name) become ``?``, so nothing downstream fails to encode.
    """
    text = json.dumps(value, ensure_ascii=False, default=str)
    return json.loads(text.encode("utf-8", errors="replace").decode("utf-8"))


@dataclass(frozen=True)
class Batch:
    """One send: the latest progress and the unacknowledged events up to ``end`` (exclusive)."""

    progress: Any
    events: list[Any]
    end: int


class Outbox:
    """The latest progress and the events not yet acknowledged by the receiver.

    Args:
        max_events: keep at most this many unacknowledged events (oldest dropped first);
            ``None`` keeps them all.
    """

    def __init__(self, max_events: int | None = None) -> None:
        self._max_events = max_events
        self._progress: Any = {}
        self._events: list[Any] = []
        self._first = 0  # sequence number of self._events[0]
        self.changed = asyncio.Event()
        """Set by every update; cleared by :meth:`take`."""

    @property
    def progress(self) -> Any:
        return self._progress

    @property
    def pending_events(self) -> list[Any]:
        return list(self._events)

    def set_progress(self, progress: Any) -> None:
        self._progress = progress
        self.changed.set()

    def add_event(self, event: Any) -> None:
        self._events.append(event)
        if self._max_events is not None and len(self._events) > self._max_events:
            dropped = len(self._events) - self._max_events
            del self._events[:dropped]
            self._first += dropped
        self.changed.set()

    def take(self) -> Batch:
        """What the next send carries; later updates set :attr:`changed` again."""
        self.changed.clear()
        return Batch(self._progress, list(self._events), self._first + len(self._events))

    def acknowledge(self, batch: Batch) -> None:
        """The receiver has ``batch``: drop the events it carried (those still pending)."""
        done = max(0, batch.end - self._first)
        del self._events[:done]
        self._first += done
