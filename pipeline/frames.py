"""Step 1, frames: extract the video frames the COLMAP model uses into ``Frames/``.

Every image of the model is named ``<scan>_<index:06d>.jpg``: frame ``index`` (0-based, in
decode order) of ``datasets/<scan>/Frames.mp4``. Only those frames are decoded to JPEG (quality
95, like the reference's OpenCV defaults); files already in ``Frames/`` are kept, so a rerun
resumes. Recordings are decoded in parallel.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pipeline.colmap import read_images
from pipeline.contract import JobLayout, frame_name
from pipeline.errors import MissingFramesError, PipelineError, UnsafeImageNameError, VideoError
from pipeline.progress import NullProgress, ProgressSink
from pipeline.video import DecodeReport, decode_frames

__all__ = [
    "FramesConfig",
    "FramesResult",
    "check_image_name",
    "extract_frames",
    "frame_path",
    "parse_frame_name",
    "plan_frames",
    "sample_names",
]

log = logging.getLogger(__name__)

_FRAME_NAME = re.compile(r"^(?P<scan>.+)_(?P<index>\d{6,})\.jpg$")


@dataclass(frozen=True)
class FramesConfig:
    """Frame extraction settings.

    Attributes:
        jpeg_quality: JPEG quality of the written frames (95 = OpenCV's default, the reference).
        workers: recordings decoded at the same time (each runs one ffmpeg process).
        decode_errors: what a recording with decoder errors (a damaged or truncated stream)
            does: ``"tolerate"`` logs them and fails only if the model needs frames the video
            lacks; ``"fail"`` decodes every recording to its end and fails the step on any
            decoder error.
    """

    jpeg_quality: int = 95
    workers: int = 2
    decode_errors: Literal["tolerate", "fail"] = "tolerate"


@dataclass
class FramesResult:
    """What the step did.

    Attributes:
        frames_dir: the ``Frames/`` folder.
        written: frames decoded and written now, per scan.
        existing: frames the model needs that were already there.
    """

    frames_dir: Path
    written: dict[str, int] = field(default_factory=dict)
    existing: int = 0

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


def check_image_name(name: str) -> str:
    """``name`` when it is a relative path that stays inside ``Frames/``, else an error.

    Image names come from ``images.bin`` (domain data, untrusted) and are joined to ``Frames/``
    to read and write frames: an absolute name, a ``.``/``..`` or empty part, a backslash or a
    control character could reach another file. Sub-folders (``a/b.jpg``) are fine.

    Raises:
        UnsafeImageNameError: naming the image.
    """
    parts = name.split("/")
    if (
        any(part in ("", ".", "..") for part in parts)
        or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise UnsafeImageNameError(
            f"image name {name[:200]!r} in the COLMAP model is not a relative path inside "
            "Frames/ (absolute paths, '..', empty parts, backslashes and control characters "
            "are refused)"
        )
    return name


def frame_path(frames_dir: Path, name: str) -> Path:
    """``frames_dir / name`` for a model image name, once :func:`check_image_name` passed."""
    return frames_dir / check_image_name(name)


def parse_frame_name(name: str) -> tuple[str, int] | None:
    """``(scan, index)`` for a name ``<scan>_<index:06d>.jpg``, else ``None``."""
    match = _FRAME_NAME.match(name)
    if match is None:
        return None
    index = int(match["index"])
    return (match["scan"], index) if frame_name(match["scan"], index) == name else None


def plan_frames(layout: JobLayout, image_names: Iterable[str]) -> tuple[dict[str, list[int]], int]:
    """The frames still to extract, by scan, and the count of those already in ``Frames/``.

    Raises:
        MissingFramesError: a missing frame's name does not say which recording holds it, or
            names a scan without ``datasets/<scan>/Frames.mp4``.
    """
    todo: dict[str, list[int]] = {}
    unparsable: list[str] = []
    existing = 0
    for name in image_names:
        if frame_path(layout.frames_dir, name).is_file():
            existing += 1
        elif (parsed := parse_frame_name(name)) is None:
            unparsable.append(name)
        else:
            todo.setdefault(parsed[0], []).append(parsed[1])
    if unparsable:
        raise MissingFramesError(
            f"{len(unparsable)} model images are neither in {layout.frames_dir} nor named "
            f"<scan>_<index:06d>.jpg after a recording: {sample_names(unparsable)}",
            unparsable,
        )
    _check_videos_exist(layout, todo)
    return {scan: sorted(set(indices)) for scan, indices in sorted(todo.items())}, existing


def _check_videos_exist(layout: JobLayout, todo: dict[str, list[int]]) -> None:
    absent = {scan: idx for scan, idx in todo.items() if not layout.recording(scan).is_file()}
    if not absent:
        return
    names = [frame_name(scan, i) for scan, idx in absent.items() for i in idx]
    scans = ", ".join(f"{scan} ({len(idx)} frames)" for scan, idx in absent.items())
    raise MissingFramesError(
        f"the model uses frames of recordings that are not in {layout.datasets_dir}: {scans}; "
        f"expected datasets/<scan>/Frames.mp4 for each",
        names,
    )


def extract_frames(
    job_root: Path,
    config: FramesConfig | None = None,
    image_names: Sequence[str] | None = None,
    progress: ProgressSink | None = None,
) -> FramesResult:
    """Extract the frames the model needs (step 1).

    Args:
        job_root: the job folder (see :class:`pipeline.contract.JobLayout`).
        image_names: the frames to provide; default: every image name in the model's
            ``images.bin``.
        progress: receives ``frames`` progress events (``frames`` done of ``total``).

    Raises:
        VideoError: a recording cannot be decoded (the file is named).
        MissingFramesError: the model needs frames that no recording holds (they are listed).
    """
    config = config or FramesConfig()
    layout = JobLayout(job_root)
    if image_names is None:
        images = read_images(layout.model_dir / "images.bin")
        image_names = [image.name for image in images.values()]
    todo, existing = plan_frames(layout, image_names)
    layout.frames_dir.mkdir(parents=True, exist_ok=True)
    result = FramesResult(layout.frames_dir, existing=existing)
    counter = _Counter(sum(len(v) for v in todo.values()), progress or NullProgress())
    workers = max(1, min(config.workers, len(todo)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frames") as pool:
        futures = {
            scan: pool.submit(_extract_scan, layout, scan, indices, config, counter.tick)
            for scan, indices in todo.items()
        }
        for scan, future in futures.items():
            result.written[scan] = future.result()
    return result


class _Counter:
    """Thread-safe frame counter that reports progress."""

    def __init__(self, total: int, progress: ProgressSink) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            pct = 100.0 * self.done / self.total
            self.progress.progress("frames", pct, frames=self.done, total=self.total)


def _extract_scan(
    layout: JobLayout,
    scan: str,
    indices: list[int],
    config: FramesConfig,
    on_frame: Callable[[], None],
) -> int:
    video = layout.recording(scan)
    report = DecodeReport()
    found: set[int] = set()
    strict = config.decode_errors == "fail"
    for index, rgb in decode_frames(video, indices, report, to_end=strict):
        _save_jpeg(rgb, layout.frames_dir / frame_name(scan, index), config.jpeg_quality)
        found.add(index)
        on_frame()
    missing = [i for i in indices if i not in found]
    _check_scan(video, scan, report, missing, config)
    log.info("extracted %d frames from %s", len(found), video)
    return len(found)


def _check_scan(
    video: Path, scan: str, report: DecodeReport, missing: list[int], config: FramesConfig
) -> None:
    if report.errors and (missing or config.decode_errors == "fail"):
        lacking = f", and the model needs {len(missing)} frames past them" if missing else ""
        raise VideoError(
            video,
            f"damaged or truncated stream ({report.errors[0]}): {report.frames_decoded} frames "
            f"decoded{lacking}",
        )
    if missing:
        names = [frame_name(scan, i) for i in missing]
        raise MissingFramesError(
            f"{video} holds {report.frames_decoded} frames (0..{report.frames_decoded - 1}), "
            f"but the model needs {len(names)} frames it lacks: {sample_names(names)}",
            names,
        )


def _save_jpeg(rgb: NDArray[np.uint8], path: Path, quality: int) -> None:
    """Write atomically, so an interrupted run never leaves a truncated frame to be resumed."""
    partial = path.with_name(path.name + ".partial")
    try:
        Image.fromarray(rgb).save(partial, format="JPEG", quality=quality)
        partial.replace(path)
    except OSError as exc:
        raise PipelineError(f"cannot write frame {path}: {exc.strerror or exc}") from exc


def sample_names(names: Sequence[str], limit: int = 8) -> str:
    """``a, b, c`` or ``a, b, … and 12 more``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … and {len(names) - limit} more"
