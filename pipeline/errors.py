"""Errors raised by the pipeline.

Every error carries a one-line, user-facing message: the CLI prints ``str(error)`` on stderr and
exits non-zero, and the node forwards that line into the task's failure reason.

::

    PipelineError
    ├── InputError                  the job's inputs are missing or malformed
    │   ├── ColmapFormatError       a COLMAP binary is corrupt or truncated (file, record, offset)
    │   ├── ColmapTextError         a COLMAP text model has a malformed line (file:line)
    │   ├── UnsupportedCameraError  a camera model the pipeline cannot undistort
    │   ├── VideoError              a recording cannot be decoded (file named)
    │   ├── MissingFramesError      the model names frames a recording does not contain
    │   ├── PlyFormatError          a PLY file is not a usable 3DGS PLY
    │   └── SfmError                structure from motion registered too few images
    ├── MissingExtraError           an optional extra (e.g. ``sfm``) is not installed
    ├── BackendUnavailableError     the requested rasterizer backend cannot run here
    ├── ExternalToolError           an external tool (ns-train, ns-export) failed
    │   └── ToolUnavailableError    ... or is not installed
    └── TrainingError               training diverged or produced no Gaussians
        └── CheckpointError         a training checkpoint is unreadable or from another run
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BackendUnavailableError",
    "CheckpointError",
    "ColmapFormatError",
    "ColmapTextError",
    "ExternalToolError",
    "InputError",
    "MissingExtraError",
    "MissingFramesError",
    "PipelineError",
    "PlyFormatError",
    "SfmError",
    "ToolUnavailableError",
    "TrainingError",
    "UnsafeImageNameError",
    "UnsupportedCameraError",
    "VideoError",
]


class PipelineError(Exception):
    """Base class: a failure with a message fit for a user."""


class InputError(PipelineError):
    """The job's inputs are missing or malformed."""


class ColmapFormatError(InputError):
    """A COLMAP binary file is corrupt or truncated.

    Attributes:
        path: the offending file.
        record: which record was being read (e.g. ``"image 3 of 120"``), or ``None``.
        offset: byte offset in the file where reading failed, or ``None``.
    """

    def __init__(
        self, path: Path | str, detail: str, record: str | None = None, offset: int | None = None
    ) -> None:
        self.path = Path(path)
        self.detail = detail
        self.record = record
        self.offset = offset
        where = [f"{self.path.name}"]
        if record is not None:
            where.append(record)
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"corrupt COLMAP file {', '.join(where)}: {detail}")


class ColmapTextError(InputError):
    """A line of a COLMAP text model (``cameras.txt``, ``images.txt``, ``points3D.txt``) is
    malformed.

    Attributes:
        path: the offending file.
        line: 1-based line number.
    """

    def __init__(self, path: Path | str, line: int, detail: str) -> None:
        self.path = Path(path)
        self.line = line
        super().__init__(f"malformed COLMAP text model {self.path}:{line}: {detail}")


class UnsupportedCameraError(InputError):
    """A camera model that the pipeline can neither use directly nor undistort."""


class VideoError(InputError):
    """A recording cannot be opened or decoded."""

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = Path(path)
        super().__init__(f"cannot decode video {self.path}: {detail}")


class MissingFramesError(InputError):
    """The COLMAP model references frames that the recordings (or ``Frames/``) do not contain.

    Attributes:
        missing: the missing frames' file names, sorted.
    """

    def __init__(self, message: str, missing: Sequence[str] = ()) -> None:
        self.missing = sorted(missing)
        super().__init__(message)


class UnsafeImageNameError(InputError):
    """An image name in the COLMAP model that would leave ``Frames/`` (absolute, ``..``)."""


class PlyFormatError(InputError):
    """A PLY file is malformed or lacks the properties of a 3DGS PLY."""


class SfmError(InputError):
    """Structure from motion could not register enough of the photos or video frames."""


class MissingExtraError(PipelineError):
    """A feature needs an optional extra that is not installed; the message names the
    command that installs it."""


class BackendUnavailableError(PipelineError):
    """The requested rasterizer backend cannot run on this machine."""


class TrainingError(PipelineError):
    """Training failed: non-finite loss, or no Gaussians left."""


class CheckpointError(TrainingError):
    """A training checkpoint cannot be read, or was written by a run with another config."""


class ExternalToolError(PipelineError):
    """An external program the pipeline runs (nerfstudio's ``ns-train`` / ``ns-export``) failed.

    Attributes:
        tool: the program's name.
        returncode: its exit status (negative: killed by that signal), or ``None`` when it never
            ran.
        stderr_tail: its last stderr lines.
    """

    def __init__(
        self,
        message: str,
        tool: str,
        returncode: int | None = None,
        stderr_tail: Sequence[str] = (),
    ) -> None:
        self.tool = tool
        self.returncode = returncode
        self.stderr_tail = list(stderr_tail)
        super().__init__(message)


class ToolUnavailableError(ExternalToolError):
    """The external program is not installed (not on ``PATH``)."""
