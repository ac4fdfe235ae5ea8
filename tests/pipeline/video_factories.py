"""Small test videos whose frames can be told apart, and an independent decoder."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np

from pipeline.video import encode_video


def counting_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A frame that shows its index: a grey level, a bar position and a colour per index."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, :, 0] = (index * 37) % 200 + 20
    frame[:, : (index % (width // 4) + 1) * 4, 1] = 220
    frame[height // 2 :, :, 2] = (index * 91) % 256
    return frame


def write_counting_video(
    path: Path, count: int, size: tuple[int, int] = (64, 48), faststart: bool = True
) -> Path:
    """An H.264 MP4 of ``count`` counting frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = (counting_frame(i, *size) for i in range(count))
    encode_video(path, frames, size, fps=10, crf=10, faststart=faststart)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame, decoded through imageio-ffmpeg's own reader (the reference)."""
    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-fps_mode", "passthrough"])
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(raw, np.uint8).reshape(height, width, 3).copy() for raw in reader]
