"""Progress events: one JSON object per line on the CLI's stdout.

This is the contract between ``python -m pipeline run`` and the node's supervisor. Every line is
a JSON object with an ``event`` key:

``{"event": "stage", "stage": S, "status": "started" | "completed" | "skipped", ...}``
    a step begins or ends; ``completed`` carries ``duration_s`` and step-specific counts.
``{"event": "progress", "stage": S, "pct": P, ...}``
    ``pct`` is the percentage of stage ``S`` done (0..100). Training adds ``step``, ``total``,
    ``loss``, ``gaussians`` and ``eta_s`` (seconds left in the stage).
``{"event": "metrics", "stage": "train", "psnr": dB, "ssim": x, "views": n}``
    held-out evaluation results.
``{"event": "snapshot", "stage": "train", "file": "live.splat", "step": s, "gaussians": n, ...}``
    a live training snapshot was written to ``refined/splatter/<file>`` (at most every
    ``--snapshot-every`` seconds; :mod:`pipeline.train.snapshot`).
``{"event": "warning", "stage": S, "message": text}``
    something best-effort failed (a preview), the run goes on.
``{"event": "done", "outputs": {name: path}, "metrics": {...}, "duration_s": s}``
    the last line of a successful run (exit code 0).
``{"event": "error", "stage": S, "message": text}``
    the last line of a failed run (non-zero exit code; the same text on stderr).

Stages, in order: ``frames``, ``dataset``, ``train``, ``export``, ``preview``.
Anything else the pipeline prints goes to stderr (logs), never stdout.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, Protocol, TextIO

__all__ = ["STAGES", "JsonLinesProgress", "NullProgress", "ProgressSink", "Stage"]

Stage = Literal["frames", "dataset", "train", "export", "preview"]
STAGES: tuple[Stage, ...] = ("frames", "dataset", "train", "export", "preview")


class ProgressSink(Protocol):
    """Where pipeline steps report to."""

    def emit(self, event: dict[str, Any]) -> None: ...

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

    def emit(self, event: dict[str, Any]) -> None:
        self._stream.write(json.dumps(event, allow_nan=False, default=float) + "\n")
        self._stream.flush()

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        now = time.monotonic()
        last = self._last_sent.get(stage)
        if last is not None and pct < 100.0 and now - last < self._min_interval_s:
            return
        self._last_sent[stage] = now
        self.emit({"event": "progress", "stage": stage, "pct": round(pct, 2), **fields})


class NullProgress:
    """Discards everything (library use and tests)."""

    def emit(self, event: dict[str, Any]) -> None:
        pass

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        pass
