"""Encoding preview frames: raw RGB piped straight into ffmpeg, no frame files on disk.

ffmpeg is imageio-ffmpeg's bundled binary (or a path given in :class:`EncodeConfig`). The
command is the reference's encode with ``rawvideo`` on stdin instead of PNG files:
``libx264``, ``yuv420p``, CRF 23, ``-movflags +faststart``, no audio. The video is written
under a temporary name and renamed to its final name only after ffmpeg exited cleanly and
the file reads back with every frame and ``moov`` before ``mdat``; otherwise it is deleted.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import partial_path, remove_quietly
from pipeline.environment import child_environment
from pipeline.preview.mp4 import probe_mp4

__all__ = ["EncodeConfig", "EncodeError", "VideoEncoder", "find_ffmpeg"]


class EncodeError(RuntimeError):
    """ffmpeg is missing, failed, or wrote something other than what was asked."""


@dataclass(frozen=True)
class EncodeConfig:
    """ffmpeg settings (the reference's unless changed).

    Attributes:
        codec: video encoder.
        crf: constant rate factor (lower = better quality, larger file).
        pix_fmt: output pixel format.
        preset: x264 preset (``None`` = ffmpeg's default, ``medium``).
        ffmpeg: path to an ffmpeg binary; ``None`` uses imageio-ffmpeg's.
        timeout_s: how long to wait for ffmpeg to finish after the last frame.
    """

    codec: str = "libx264"
    crf: int = 23
    pix_fmt: str = "yuv420p"
    preset: str | None = None
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
    """Context manager feeding ``frame_count`` RGB frames to ffmpeg, publishing ``path``.

    Usage::

        with VideoEncoder(path, 1280, 720, fps=30, frame_count=150) as video:
            for frame in frames:          # uint8 [720, 1280, 3]
                video.write(frame)
            video.finish()                # validates, then renames into place

    Leaving the block without :meth:`finish` (an exception, an interrupt) kills ffmpeg and
    deletes the temporary file; ``path`` is never left partial.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        frame_count: int,
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
        return [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps:g}", "-i", "pipe:0",
            "-frames:v", str(self.frame_count), "-c:v", cfg.codec, *preset,
            "-pix_fmt", cfg.pix_fmt, "-crf", str(cfg.crf), "-movflags", "+faststart", "-an",
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
        """Send one frame: uint8 ``[height, width, 3]`` RGB."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 [{self.height}, {self.width}, 3], "
                f"got {frame.dtype} {list(frame.shape)}"
            )
        if self.frames_written >= self.frame_count:
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
        if self.frames_written != self.frame_count:
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
        if info.sample_count != self.frame_count or not info.moov_before_mdat:
            raise EncodeError(
                f"ffmpeg wrote {info.sample_count} of {self.frame_count} frames "
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
