"""Decode-side checks of a produced MP4 and cheap synthetic frames to encode."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np


def synthetic_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Smooth gradient with a moving bar: cheap to render and to encode."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack(np.broadcast_arrays(x[None, :] + 0 * y, y + 0 * x[None, :],
                                        np.full((height, width), 96.0)), axis=-1)  # fmt: skip
    base = base.astype(np.uint8)
    bar = max(width // 16, 2)
    for i in range(count):
        frame = base.copy()
        start = (i * width // max(count, 1)) % (width - bar)
        frame[:, start : start + bar] = 255
        yield frame


@dataclass(frozen=True)
class FfmpegStream:
    """The video stream line of ``ffmpeg -i``."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    duration_s: float


def ffmpeg_describe(path: Path) -> FfmpegStream:
    """Parse what ``ffmpeg -i FILE`` prints about the first video stream (there is no ffprobe)."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    text = result.stderr
    stream = re.search(r"Video: (\w+).*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+).*?, ([\d.]+) fps", text)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    assert stream and duration, text
    h, m, s = duration.groups()
    return FfmpegStream(
        codec=stream.group(1), pix_fmt=stream.group(2), width=int(stream.group(3)),
        height=int(stream.group(4)), fps=float(stream.group(5)),
        duration_s=int(h) * 3600 + int(m) * 60 + float(s),
    )  # fmt: skip
