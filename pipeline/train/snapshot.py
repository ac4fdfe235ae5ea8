"""Live training snapshots: the current Gaussians as a compact ``.splat``, every few seconds.

While training runs, :class:`SnapshotWriter` writes ``refined/splatter/live.splat`` (32 bytes per
Gaussian, DC colour only) at most every ``every_s`` seconds, the first one right after the first
step. Gaussians the export would drop (non-finite, or below one 8-bit step of opacity) are left
out, and the file is in the output frame of ``splat_rot.splat`` (Rz(−90°) of COLMAP), so a viewer
showing the snapshot keeps its camera when the final splat replaces it. The file is replaced
atomically (a reader sees a whole snapshot or the previous one); ``live.json`` beside it records
the scene's up vector in that frame, the step and the count. Each write is announced on the
progress stream::

    {"event": "snapshot", "stage": "train", "file": "live.splat", "step": s, "gaussians": n,
     "write_s": t}

The cost is measured (:attr:`SnapshotWriter.seconds`); with the default 10 s it stays far under
5 % of training (``make bench`` reports it per step).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike

from pipeline.atomic import atomic_path
from pipeline.contract import LIVE_META, LIVE_SPLAT, SnapshotEvent
from pipeline.export.outputs import filter_for_export
from pipeline.export.rotate import COLMAP_TO_OUTPUT, rotate_splats
from pipeline.export.splat_format import write_splat
from pipeline.progress import NullProgress, ProgressSink
from pipeline.splats import Splats
from pipeline.train.params import Params, splats_from_params

__all__ = ["DEFAULT_SNAPSHOT_SECS", "LIVE_META", "LIVE_SPLAT", "SnapshotWriter", "snapshot_splats"]

DEFAULT_SNAPSHOT_SECS = 10.0


def snapshot_splats(splats: Splats) -> Splats:
    """The Gaussians a snapshot holds: the export's filter, DC colour only, output frame."""
    kept, _, _ = filter_for_export(splats.detach())
    dc_only = Splats(*(t.detach().to("cpu", torch.float32) for t in kept.tensors()))
    dc_only.sh = dc_only.sh[:, :1]
    return rotate_splats(dc_only, COLMAP_TO_OUTPUT, rotate_sh_bands=False)


class SnapshotWriter:
    """Writes ``live.splat`` during training, at most every ``every_s`` seconds.

    Args:
        folder: where ``live.splat`` and ``live.json`` go (``refined/splatter``).
        every_s: minimum seconds between two snapshots (> 0).
        up: ``[3]`` the scene's up vector in the COLMAP (training) frame.
        progress: receives one ``snapshot`` event per write.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        folder: Path,
        every_s: float,
        up: ArrayLike,
        progress: ProgressSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not every_s > 0:
            raise ValueError(f"snapshot interval must be positive, got {every_s}")
        self.folder = folder
        self.every_s = every_s
        self._up_output = (COLMAP_TO_OUTPUT @ np.asarray(up, dtype=np.float64)).tolist()
        self._progress = progress or NullProgress()
        self._clock = clock
        self._last: float | None = None
        self.written = 0
        self.seconds = 0.0
        """Wall-clock seconds spent writing snapshots so far."""

    def maybe_write(self, step: int, params: Params) -> bool:
        """Writes a snapshot if ``every_s`` has passed since the last one (or none was written);
        returns whether it did."""
        now = self._clock()
        if self._last is not None and now - self._last < self.every_s:
            return False
        self.write(step, splats_from_params(params))
        self._last = self._clock()
        return True

    def write(self, step: int, splats: Splats) -> int:
        """Writes ``splats`` (COLMAP frame) as the snapshot now; returns the count written."""
        started = time.perf_counter()
        shown = snapshot_splats(splats)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"up": self._up_output, "step": step, "gaussians": len(shown)}
        with atomic_path(self.folder / LIVE_META) as temp:
            temp.write_text(json.dumps(meta), encoding="utf-8")
        count = write_splat(self.folder / LIVE_SPLAT, shown, sort=False)
        elapsed = time.perf_counter() - started
        self.written += 1
        self.seconds += elapsed
        event = SnapshotEvent(file=LIVE_SPLAT, step=step, gaussians=count, write_s=elapsed)
        self._progress.emit(event)
        return count
