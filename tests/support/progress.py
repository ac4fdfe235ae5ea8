"""A progress sink (:class:`pipeline.progress.ProgressSink`) that keeps every event."""

from __future__ import annotations

from typing import Any

from pipeline.contract import Event, ProgressEvent, Stage, event_dict

__all__ = ["RecordingProgress"]


class RecordingProgress:
    """Keeps every event the pipeline emits, in order, as the JSON objects it would print."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Event) -> None:
        self.events.append(event_dict(event))

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        self.emit(ProgressEvent.of(stage, pct, **fields))

    def warnings(self) -> list[str]:
        """The messages of the ``warning`` events."""
        return [e["message"] for e in self.events if e["event"] == "warning"]
