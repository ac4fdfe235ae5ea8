"""What one demo run does: the scene, the training and how long to wait."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoConfig"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Attributes:
        output: where the downloaded artifacts, the receipt and the node's log go.
        steps: training steps (``SPLATTER_ITERATIONS``).
        views: frames of the synthetic recording.
        size: synthetic frame size ``WxH`` in pixels.
        threads: CPU threads of the pipeline child (``SPLATTER_THREADS``).
        previews: render and upload the preview stills and the 1280×720 orbit video.
        timeout_s: give up after this many seconds of waiting for the task.
        keep_work: keep the temporary folder (scene, job folders, node database).
        serve: once the task has ended, keep the node up (its viewer) until Ctrl-C.
    """

    output: Path = Path("demo-output")
    steps: int = 500
    views: int = 36
    size: str = "160x120"
    threads: int | None = None
    previews: bool = True
    timeout_s: float = 900.0
    keep_work: bool = False
    serve: bool = False
