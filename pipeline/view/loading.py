"""Splat files the viewer opens: 3DGS ``.ply``, antimatter15 ``.splat`` and PlayCanvas ``.sog``.

A ``.splat`` record keeps degree-0 colour only (8-bit), opacity (8-bit), linear scales and an
8-bit quaternion; :func:`splats_from_splat_records` turns them back into stored parameters
(log scales, logit opacity, SH DC) so the project's rasterizer renders what a browser shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.errors import InputError
from pipeline.export.ply import read_ply
from pipeline.export.splat_format import SplatFile, read_splat
from pipeline.formats.registry import read_splats
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats

__all__ = [
    "SPARK_FILE_TYPES",
    "VIEWABLE_SUFFIXES",
    "LoadedSplat",
    "load_splat_file",
    "splats_from_splat_records",
]

VIEWABLE_SUFFIXES = (".ply", ".splat", ".sog")
#: SparkJS's name for each format (``SplatFileType``; it reads SOG v2 as ``pcsogszip``).
SPARK_FILE_TYPES = {".ply": "ply", ".splat": "splat", ".sog": "pcsogszip"}
_SH_C0 = 0.28209479177387814
# 8-bit opacity 0 or 255 has no finite logit; clamp to half a step inside.
_ALPHA_EPS = 0.5 / 255.0


@dataclass(frozen=True)
class LoadedSplat:
    """A splat file, decoded.

    Attributes:
        splats: the Gaussians in the file's own frame (CPU, float32).
        up: ``[3]`` unit up vector from the PLY header, or ``None`` (``.splat`` has no header).
        frame: the scene frame the PLY header records, or ``None``.
        file_type: SparkJS's name for the format (:data:`SPARK_FILE_TYPES`).
    """

    splats: Splats
    up: NDArray[np.float64] | None
    file_type: str
    frame: SceneFrame | None = None


def splats_from_splat_records(records: SplatFile) -> Splats:
    """``.splat`` records → stored parameters (SH degree 0).

    Colour ``c = 0.5 + C0 · dc`` is inverted per channel; alpha ``a`` (0..255) becomes
    ``logit(a / 255)`` clamped half a step inside (0, 1); quaternions decode as
    ``(b - 128) / 128`` (w, x, y, z), an all-zero one becomes the identity.
    """
    rgb = records.rgba[:, :3].astype(np.float64) / 255.0
    alpha = np.clip(records.rgba[:, 3].astype(np.float64) / 255.0, _ALPHA_EPS, 1.0 - _ALPHA_EPS)
    quats = (records.rotation.astype(np.float64) - 128.0) / 128.0
    zero = ~np.any(quats != 0.0, axis=1)
    quats[zero] = (1.0, 0.0, 0.0, 0.0)
    with np.errstate(divide="ignore"):
        log_scales = np.log(records.scales.astype(np.float64))
    dc = (rgb - 0.5) / _SH_C0

    def f32(a: NDArray[np.float64] | NDArray[np.float32]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return Splats(
        means=f32(records.positions),
        quats=f32(quats),
        log_scales=f32(log_scales),
        logit_opacities=f32(np.log(alpha) - np.log1p(-alpha)),
        sh=f32(dc).reshape(-1, 1, 3),
    )


def load_splat_file(path: Path) -> LoadedSplat:
    """Reads a ``.ply`` or ``.splat`` file for viewing.

    Raises:
        InputError: missing file, unknown suffix, or a file that does not parse.
    """
    suffix = path.suffix.lower()
    if suffix not in VIEWABLE_SUFFIXES:
        raise InputError(f"cannot view {path.name}: expected one of {', '.join(VIEWABLE_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"no such splat file: {path}")
    if suffix == ".ply":
        ply = read_ply(path)
        return LoadedSplat(ply.splats, ply.up, "ply", ply.frame)
    if suffix == ".sog":
        arrays = read_splats(path)
        splats = Splats(*(torch.from_numpy(np.ascontiguousarray(c)) for c in arrays.columns()))
        return LoadedSplat(splats, None, SPARK_FILE_TYPES[suffix])
    try:
        records = read_splat(path)
    except ValueError as exc:
        raise InputError(f"not a .splat file: {exc}") from exc
    return LoadedSplat(splats_from_splat_records(records), None, "splat")
