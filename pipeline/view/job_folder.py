"""What the viewer shows for a job folder (``refined/splatter``), framed like the preview.

The page shows ``splat_rot.splat`` (the job's artifact, output frame) once it exists, and the
training snapshot ``live.splat`` (output frame too, see :mod:`pipeline.train.snapshot`) before.
The preview orbit is framed in nerfstudio's frame (``splat.ply``, whose header records the
scene frame or up vector), so the first view is computed there and rotated into the output
frame: the page opens on the preview video's first frame, and the live and final splats share
one frame, so the camera stays put when the final splat replaces the snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.contract import LIVE_META, LIVE_SPLAT, ROTATED_PLY, SPLAT_FILE, SPLAT_PLY
from pipeline.export.ply import read_ply
from pipeline.export.rotate import NERFSTUDIO_TO_OUTPUT, rotate_splats
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats
from pipeline.view.camera import ViewCamera, first_view
from pipeline.view.loading import load_splat_file

__all__ = [
    "FINAL_SPLAT",
    "LIVE_META",
    "LIVE_SPLAT",
    "FramedSplat",
    "frame_job_folder",
    "output_frame_view",
]

FINAL_SPLAT = SPLAT_FILE
NERFSTUDIO_PLY = SPLAT_PLY
_DEFAULT_UP_OUTPUT: NDArray[np.float64] = NERFSTUDIO_TO_OUTPUT @ np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FramedSplat:
    """A splat file to show and its camera rig.

    Attributes:
        path: the file the page loads.
        splats: its Gaussians as the page gets them (``.splat`` precision), output frame.
        camera: the first view and orbit rig, output frame.
        live: ``True`` for the training snapshot.
    """

    path: Path
    splats: Splats
    camera: ViewCamera
    live: bool


def output_frame_view(ns_splats: Splats, ns_up: NDArray[np.float64] | SceneFrame) -> ViewCamera:
    """The preview orbit's first pose for nerfstudio-frame Gaussians (``ns_up``: the scene
    frame or up vector in that frame, as the preview step gets it), in the output frame."""
    return first_view(ns_splats, ns_up).transformed(NERFSTUDIO_TO_OUTPUT)


def frame_job_folder(folder: Path) -> FramedSplat | None:
    """The final splat when there is one, else the snapshot, else ``None``.

    Raises:
        InputError: a file exists but cannot be read.
    """
    final = folder / FINAL_SPLAT
    if final.is_file():
        shown = load_splat_file(final).splats
        return FramedSplat(final, shown, _final_camera(folder, shown), live=False)
    live = folder / LIVE_SPLAT
    if live.is_file():
        shown = load_splat_file(live).splats
        return FramedSplat(live, shown, _view_of_output(shown, _live_up(folder)), live=True)
    return None


def _final_camera(folder: Path, shown: Splats) -> ViewCamera:
    """From ``splat.ply`` (the preview's own input) when there, else from what is shown."""
    ns_ply = folder / NERFSTUDIO_PLY
    if ns_ply.is_file():
        ply = read_ply(ns_ply)
        default = NERFSTUDIO_TO_OUTPUT.T @ _DEFAULT_UP_OUTPUT
        return output_frame_view(ply.splats, ply.frame or (default if ply.up is None else ply.up))
    rotated = folder / ROTATED_PLY
    up_out = read_ply(rotated).up if rotated.is_file() else None
    return _view_of_output(shown, up_out if up_out is not None else _DEFAULT_UP_OUTPUT)


def _view_of_output(splats: Splats, up_out: NDArray[np.float64]) -> ViewCamera:
    back = NERFSTUDIO_TO_OUTPUT.T
    return output_frame_view(rotate_splats(splats, back, rotate_sh_bands=False), back @ up_out)


def _live_up(folder: Path) -> NDArray[np.float64]:
    """The up vector the snapshot's sidecar records (output frame), else the default."""
    try:
        meta = json.loads((folder / LIVE_META).read_text(encoding="utf-8"))
        up = np.asarray(meta["up"], dtype=np.float64).reshape(3)
    except (OSError, ValueError, KeyError, TypeError):
        return _DEFAULT_UP_OUTPUT
    norm = float(np.linalg.norm(up))
    if not (np.isfinite(norm) and norm > 0):
        return _DEFAULT_UP_OUTPUT
    unit: NDArray[np.float64] = up / norm
    return unit
