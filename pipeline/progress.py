"""Where pipeline steps report to: the JSON-lines events of :mod:`pipeline.contract` on stdout.

``python -m pipeline run`` writes every event through :class:`JsonLinesProgress`, which encodes
it with :func:`pipeline.contract.encode_event`; the node parses the same lines with
:func:`pipeline.contract.parse_event`. Anything else the pipeline prints goes to stderr (logs),
never stdout.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

from pipeline.contract import Event, ProgressEvent, Stage, encode_event

__all__ = ["JsonLinesProgress", "NullProgress", "ProgressSink"]


class ProgressSink(Protocol):
    """Where pipeline steps report to."""

    def emit(self, event: Event) -> None: ...

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None: ...


class JsonLinesProgress:
    """Writes events as JSON lines, throttling ``progress`` events per stage.

    Args:
        stream: where to write (stdout by default).
        min_interval_s: minimum time between two ``progress`` events of one stage; the first
            event and ``pct == 100`` always go out.
    """

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 0.5) -> None:
        self._stream = stream or sys.stdout
        self._min_interval_s = min_interval_s
        self._last_sent: dict[str, float] = {}

    def emit(self, event: Event) -> None:
        self._stream.write(encode_event(event) + "\n")
        self._stream.flush()

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        now = time.monotonic()
        last = self._last_sent.get(stage)
        if last is not None and pct < 100.0 and now - last < self._min_interval_s:
            return
        self._last_sent[stage] = now
        self.emit(ProgressEvent.of(stage, round(pct, 2), **fields))


class NullProgress:
    """Discards everything (library use and tests)."""

    def emit(self, event: Event) -> None:
        pass

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        pass
