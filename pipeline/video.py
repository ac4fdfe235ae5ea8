"""Decode and encode videos with the ffmpeg binary that imageio-ffmpeg ships: the project's one
decoder (:func:`decode_frames`) and one encoder (:class:`VideoEncoder`, with
:func:`encode_video` for a whole sequence at once).

Decoding streams every frame of the first video stream, in decode order and without any frame
rate conversion (``-fps_mode passthrough``: frame ``n`` is the ``n``-th decoded picture, as
OpenCV's ``VideoCapture`` counts them), as PPM images through a pipe: each frame carries its own
size, so rotated or oddly sized videos need no probing.

Encoding pipes raw ``rgb24`` frames into ffmpeg, no frame files on disk. The preview's command
is the reference's encode with ``rawvideo`` on stdin instead of PNG files: ``libx264``,
``yuv420p``, CRF 23, ``-movflags +faststart``, no audio. The size and frame rate are passed as
given (imageio-ffmpeg's ``write_frames`` would round sizes up to multiples of 16 unless told
``macro_block_size``, and add quality flags of its own; this encoder has neither trap). The
video is published under its name only once ffmpeg exited cleanly and the file reads back with
every frame (:mod:`pipeline.mp4`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import partial_path, remove_quietly
from pipeline.environment import child_environment
from pipeline.errors import VideoError
from pipeline.mp4 import probe_mp4

__all__ = [
    "DecodeReport",
    "EncodeConfig",
    "EncodeError",
    "VideoEncoder",
    "decode_frames",
    "encode_video",
    "find_ffmpeg",
]

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


# --- encoding ---------------------------------------------------------------------------------


class EncodeError(RuntimeError):
    """ffmpeg is missing, failed, or wrote something other than what was asked."""


@dataclass(frozen=True)
class EncodeConfig:
    """ffmpeg settings (the reference's preview encode unless changed).

    Attributes:
        codec: video encoder.
        crf: constant rate factor (lower = better quality, larger file; 0 = lossless).
        pix_fmt: output pixel format (``yuv420p`` needs even sizes).
        preset: x264 preset (``None`` = ffmpeg's default, ``medium``).
        faststart: put the index (``moov``) before the data so players can start at once.
        ffmpeg: path to an ffmpeg binary; ``None`` uses imageio-ffmpeg's.
        timeout_s: how long to wait for ffmpeg to finish after the last frame.
    """

    codec: str = "libx264"
    crf: int = 23
    pix_fmt: str = "yuv420p"
    preset: str | None = None
    faststart: bool = True
    ffmpeg: str | None = None
    timeout_s: float = 300.0


def find_ffmpeg(override: str | None = None) -> str:
    """Path of the ffmpeg binary to run; raises :class:`EncodeError` if there is none."""
    if override is not None:
        if not Path(override).is_file():
            raise EncodeError(f"ffmpeg not found at {override}")
        return override
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise EncodeError(f"ffmpeg not found: {exc}") from exc


class VideoEncoder:
    """Context manager feeding RGB frames to ffmpeg, publishing ``path`` only when complete.

    Raw ``rgb24`` frames go down a pipe (no frame files on disk, no resizing: the size is
    passed as is, and no quality flags beyond :class:`EncodeConfig`'s). The video is written
    under a temporary name and renamed to ``path`` only after ffmpeg exited cleanly and the file
    reads back with every frame written (and ``moov`` before ``mdat`` with ``faststart``).

    Usage::

        with VideoEncoder(path, 1280, 720, fps=30, frame_count=150) as video:
            for frame in frames:          # uint8 [720, 1280, 3]
                video.write(frame)
            video.finish()                # validates, then renames into place

    Leaving the block without :meth:`finish` (an exception, an interrupt) kills ffmpeg and
    deletes the temporary file; ``path`` is never left partial.

    Args:
        path: the MP4 to publish.
        width, height: frame size in pixels.
        fps: frames per second of the output.
        frame_count: frames that will be written, or ``None`` when not known in advance.
        config: ffmpeg settings.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        frame_count: int | None,
        config: EncodeConfig | None = None,
    ) -> None:
        self.path = path
        self.width, self.height, self.fps = width, height, fps
        self.frame_count = frame_count
        self.config = config or EncodeConfig()
        self.frames_written = 0
        self._temp = partial_path(path)
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def command(self, ffmpeg: str) -> list[str]:
        """The ffmpeg command line (input: raw RGB on stdin; output: the temporary file)."""
        cfg = self.config
        preset = ["-preset", cfg.preset] if cfg.preset else []
        count = [] if self.frame_count is None else ["-frames:v", str(self.frame_count)]
        faststart = ["-movflags", "+faststart"] if cfg.faststart else []
        return [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps:g}", "-i", "pipe:0",
            *count, "-c:v", cfg.codec, *preset,
            "-pix_fmt", cfg.pix_fmt, "-crf", str(cfg.crf), *faststart, "-an",
            "-f", "mp4", str(self._temp),
        ]  # fmt: skip

    def __enter__(self) -> VideoEncoder:
        ffmpeg = find_ffmpeg(self.config.ffmpeg)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_quietly(self._temp)
        # An anonymous temporary file collects ffmpeg's messages without risk of a full pipe.
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                self.command(ffmpeg), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=self._stderr, env=child_environment(),
            )  # fmt: skip
        except OSError as exc:
            self._cleanup()
            raise EncodeError(f"cannot start ffmpeg ({ffmpeg}): {exc}") from exc
        return self

    def write(self, frame: NDArray[np.uint8]) -> None:
        """Send one frame: uint8 ``[height, width, 3]`` RGB.

        Raises:
            ValueError: the frame has another shape or dtype.
            EncodeError: more frames than announced, or ffmpeg stopped reading.
        """
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {self.frames_written} is {frame.shape} {frame.dtype}, "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        if self.frame_count is not None and self.frames_written >= self.frame_count:
            raise EncodeError(f"more than the {self.frame_count} frames announced")
        stdin = self._running().stdin
        assert stdin is not None  # opened with stdin=PIPE
        try:
            stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError) as exc:
            raise EncodeError(f"ffmpeg stopped reading frames: {self._reason()}") from exc
        self.frames_written += 1

    def finish(self) -> Path:
        """Close the input, wait for ffmpeg, check the file, rename it to ``path``."""
        process = self._running()
        if self.frame_count is not None and self.frames_written != self.frame_count:
            raise EncodeError(
                f"incomplete frame sequence: {self.frames_written} of {self.frame_count} frames"
            )
        try:
            assert process.stdin is not None
            process.stdin.close()
            code = process.wait(timeout=self.config.timeout_s)
        except (BrokenPipeError, OSError) as exc:
            raise EncodeError(f"ffmpeg failed: {self._reason()}") from exc
        except subprocess.TimeoutExpired as exc:
            raise EncodeError(f"ffmpeg did not finish within {self.config.timeout_s:g} s") from exc
        if code != 0:
            raise EncodeError(f"ffmpeg exited with code {code}: {self._reason()}")
        self._check_output()
        self._temp.replace(self.path)
        self._cleanup()
        return self.path

    def _check_output(self) -> None:
        if not self._temp.is_file() or self._temp.stat().st_size == 0:
            raise EncodeError("ffmpeg exited cleanly but wrote no video")
        try:
            info = probe_mp4(self._temp)
        except (ValueError, OSError) as exc:
            raise EncodeError(f"ffmpeg wrote an unreadable MP4: {exc}") from exc
        misplaced = self.config.faststart and not info.moov_before_mdat
        if info.sample_count != self.frames_written or misplaced:
            raise EncodeError(
                f"ffmpeg wrote {info.sample_count} of {self.frames_written} frames "
                f"(boxes {info.top_level})"
            )

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise EncodeError("encoder not started (use it as a context manager)")
        return self._process

    def _reason(self) -> str:
        """ffmpeg's last message lines, or its exit status."""
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        text = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        lines = text.splitlines()[-3:]
        if lines:
            return " | ".join(lines)
        code = None if self._process is None else self._process.returncode
        return f"no message (exit code {code})"

    def _cleanup(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        remove_quietly(self._temp)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cleanup()


def encode_video(
    path: Path,
    frames: Iterable[NDArray[np.uint8]],
    size: tuple[int, int],
    fps: float,
    crf: int = 18,
    faststart: bool = True,
) -> int:
    """Encode ``[H, W, 3]`` uint8 RGB frames as H.264 (libx264, yuv420p, preset medium) MP4
    with :class:`VideoEncoder`; returns the count.

    Args:
        size: ``(width, height)``, both even (yuv420p needs even sizes).
        fps: frames per second of the output.
        crf: x264 constant rate factor (0 lossless … 51 worst; 18 is visually lossless).
        faststart: put the index (``moov``) before the data so players can start at once.

    Raises:
        ValueError: an odd size, or a frame of another shape or dtype.
        EncodeError: ffmpeg failed.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
    config = EncodeConfig(crf=crf, preset="medium", faststart=faststart)
    with VideoEncoder(path, width, height, fps, None, config) as video:
        for frame in frames:
            video.write(frame)
        video.finish()
    return video.frames_written
