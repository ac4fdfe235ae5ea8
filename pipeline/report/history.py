"""A progress sink that forwards everything and remembers the training loss of each step."""

from __future__ import annotations

import math
from typing import Any

from pipeline.contract import Event, Stage
from pipeline.progress import ProgressSink

__all__ = ["LossHistory"]


class LossHistory:
    """Wraps ``sink``; every ``train`` progress call with ``step`` and ``loss`` is recorded
    (before the sink's own throttling), so :attr:`points` holds one ``(step, loss)`` per step."""

    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink
        self.points: list[tuple[int, float]] = []

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        step, loss = fields.get("step"), fields.get("loss")
        if stage == "train" and isinstance(step, int) and isinstance(loss, float | int):
            self._record(step, float(loss))
        self.sink.progress(stage, pct, **fields)

    def _record(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.points.append((step, loss))
