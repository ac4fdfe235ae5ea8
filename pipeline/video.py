"""Decode and encode videos with the ffmpeg binary that imageio-ffmpeg ships.

Decoding streams every frame of the first video stream, in decode order and without any frame
rate conversion (``-fps_mode passthrough``: frame ``n`` is the ``n``-th decoded picture, as
OpenCV's ``VideoCapture`` counts them), as PPM images through a pipe: each frame carries its own
size, so rotated or oddly sized videos need no probing.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from pipeline.environment import child_environment
from pipeline.errors import VideoError

__all__ = ["DecodeReport", "decode_frames", "encode_video"]

log = logging.getLogger(__name__)

_CONTEXT = re.compile(r"\[[^\]]* @ 0x[0-9a-f]+\] ?")


@dataclass
class DecodeReport:
    """What decoding a video found out, filled in as :func:`decode_frames` runs.

    Attributes:
        frames_decoded: pictures read so far (all of them once decoding reached the end).
        reached_end: the decoder ran to the end of the stream (not stopped early).
        errors: ffmpeg's error lines (a damaged or truncated stream reports some).
    """

    frames_decoded: int = 0
    reached_end: bool = False
    errors: list[str] = field(default_factory=list)


def decode_frames(
    path: Path,
    wanted: Iterable[int],
    report: DecodeReport | None = None,
    to_end: bool = False,
) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Yield ``(index, [H, W, 3] uint8 RGB)`` for each wanted frame index the video contains.

    Frames are yielded in increasing index order. Decoding stops after the last wanted frame,
    or, with ``to_end``, runs through the whole stream (to see every decoder error). Indices
    the video does not reach are simply not yielded (compare with ``report``).

    Raises:
        VideoError: the file is missing, is not a video, or ffmpeg fails on it.
    """
    if not path.is_file():
        raise VideoError(path, "file not found")
    # A range (e.g. ``range(2**62)`` for "every frame") is already sorted: keep it lazy.
    targets = wanted if isinstance(wanted, range) and wanted.step > 0 else sorted(set(wanted))
    report = report if report is not None else DecodeReport()
    if not targets:
        return
    process = _start_decoder(path)
    assert process.stdout is not None and process.stderr is not None
    stderr_lines: list[str] = []
    reader = threading.Thread(target=_collect, args=(process.stderr, stderr_lines), daemon=True)
    reader.start()
    try:
        yield from _select(process.stdout, targets, report)
        if to_end:
            _drain(process.stdout, report)
    finally:
        if not report.reached_end:  # every wanted frame found (or the caller stopped)
            process.kill()
        returncode = process.wait()
        reader.join()
        report.errors = [_clean(line) for line in stderr_lines if line.strip()]
    if report.reached_end:
        _check_exit(path, returncode, report)


def _start_decoder(path: Path) -> subprocess.Popen[bytes]:
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(path),
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-fps_mode", "passthrough",
        "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24",
        "-",
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_environment()
    )


def _collect(stream: IO[bytes], lines: list[str]) -> None:
    for raw in stream:
        lines.append(raw.decode("utf-8", errors="replace").rstrip())


def _select(
    stdout: IO[bytes], targets: Sequence[int], report: DecodeReport
) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    position = 0  # next target to look for
    while position < len(targets):
        present, frame = _read_ppm(stdout, keep=report.frames_decoded == targets[position])
        if not present:
            report.reached_end = True
            return
        index = report.frames_decoded
        report.frames_decoded += 1
        if frame is not None:
            position += 1
            yield index, frame


def _drain(stdout: IO[bytes], report: DecodeReport) -> None:
    while _read_ppm(stdout, keep=False)[0]:
        report.frames_decoded += 1
    report.reached_end = True


def _read_ppm(stream: IO[bytes], keep: bool) -> tuple[bool, NDArray[np.uint8] | None]:
    """One binary PPM from ``stream``: ``(present, image if keep else None)``; ``present`` is
    false at the end of the stream (a cut-off last frame counts as absent)."""
    header = _read_tokens(stream, 4)
    if header is None:
        return False, None
    magic, width, height, maxval = header
    if magic != b"P6" or maxval != b"255":
        raise ValueError(f"unexpected PPM header from ffmpeg: {header!r}")
    size = int(width) * int(height) * 3
    if not keep:
        return _skip(stream, size), None
    data = stream.read(size)
    if len(data) < size:
        return False, None
    return True, np.frombuffer(data, dtype=np.uint8).reshape(int(height), int(width), 3)


_SKIP_BUFFER = threading.local()


def _skip(stream: IO[bytes], size: int) -> bool:
    """Consume ``size`` bytes into a reused per-thread buffer; false if the stream ends first."""
    buffer = getattr(_SKIP_BUFFER, "data", None)
    if buffer is None or len(buffer) < size:
        buffer = _SKIP_BUFFER.data = bytearray(size)
    view = memoryview(buffer)[:size]
    while view:
        count = stream.readinto(view)  # type: ignore[attr-defined]
        if not count:
            return False
        view = view[count:]
    return True


def _read_tokens(stream: IO[bytes], count: int) -> list[bytes] | None:
    """``count`` whitespace-separated header tokens; the single whitespace byte after the last
    one is consumed, as the PPM format prescribes."""
    tokens: list[bytes] = []
    current = bytearray()
    while len(tokens) < count:
        byte = stream.read(1)
        if not byte:
            return None
        if byte.isspace():
            if current:
                tokens.append(bytes(current))
                current.clear()
        else:
            current += byte
    return tokens


def _clean(line: str) -> str:
    """An ffmpeg log line without its ``[h264 @ 0x55d…]`` context prefixes."""
    return _CONTEXT.sub("", line).strip()


def _check_exit(path: Path, returncode: int, report: DecodeReport) -> None:
    if returncode != 0 or (report.frames_decoded == 0 and report.errors):
        detail = "; ".join(report.errors[:2]) or f"ffmpeg exited with code {returncode}"
        raise VideoError(path, f"not a readable video: {detail}")
    if report.frames_decoded == 0:
        raise VideoError(path, "the file contains no video frames")
    if report.errors:
        log.warning("decoding %s reported errors: %s", path, "; ".join(report.errors[:3]))


def encode_video(
    path: Path,
    frames: Iterable[NDArray[np.uint8]],
    size: tuple[int, int],
    fps: float,
    crf: int = 18,
    faststart: bool = True,
) -> int:
    """Encode ``[H, W, 3]`` uint8 RGB frames as H.264 (libx264, yuv420p) MP4; returns the count.

    Args:
        size: ``(width, height)``, both even (yuv420p needs even sizes).
        fps: frames per second of the output.
        crf: x264 constant rate factor (0 lossless … 51 worst; 18 is visually lossless).
        faststart: put the index (``moov``) before the data so players can start at once.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
    output_params = ["-crf", str(crf), "-preset", "medium"]
    output_params += ["-movflags", "+faststart"] if faststart else []
    # quality=None: no imageio-chosen quality flags; macro_block_size=2: no silent resizing.
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=output_params,
    )
    writer.send(None)
    count = 0
    try:
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(
                    f"frame {count} is {frame.shape} {frame.dtype}, "
                    f"expected ({height}, {width}, 3) uint8"
                )
            writer.send(np.ascontiguousarray(frame).tobytes())
            count += 1
    finally:
        writer.close()
    return count
