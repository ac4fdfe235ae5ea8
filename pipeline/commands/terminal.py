"""A :class:`~pipeline.progress.ProgressSink` for people: one updating line on stderr.

Used by the user-facing commands (``preview``); the ``run`` command keeps JSON lines on stdout.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from pipeline.contract import ErrorEvent, Event, Stage, WarningEvent

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """Writes progress as a line rewritten in place (a new line each time if not a terminal).

    Args:
        stream: where to write (stderr by default).
        min_interval_s: minimum time between two progress lines; 100 % always prints.
    """

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        self._min_interval_s = min_interval_s
        self._last = -float("inf")
        self._open_line = False

    def emit(self, event: Event) -> None:
        if isinstance(event, WarningEvent | ErrorEvent):
            self._end_line()
            self._stream.write(f"{event.event}: {event.message}\n")
            self._stream.flush()

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        now = time.monotonic()
        if pct < 100.0 and now - self._last < self._min_interval_s:
            return
        self._last = now
        parts = [f"{stage}: {pct:5.1f}%"]
        if "frame" in fields and "frames" in fields:
            parts.append(f"frame {fields['frame']}/{fields['frames']}")
        if "eta_s" in fields:
            parts.append(f"eta {float(fields['eta_s']):.0f} s")
        line = ", ".join(parts)
        if self._stream.isatty():
            self._stream.write("\r" + line.ljust(60))
            self._open_line = pct < 100.0
            if not self._open_line:
                self._stream.write("\n")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def _end_line(self) -> None:
        if self._open_line:
            self._stream.write("\n")
            self._open_line = False
