"""Step 4 of the pipeline: trained splats → ``splat.ply``, ``splat_rot.ply``, ``splat_rot.splat``
and (best effort) ``splat_rot.sog``.

The trainer works in the COLMAP frame; the files are written in the reference's frames (see
:mod:`pipeline.export.rotate`): ``splat.ply`` in nerfstudio's frame (where the reference's
``ns-export`` wrote it and its previews were rendered), ``splat_rot.*`` in the output frame
(Rz(−90°) of COLMAP). Unlike the reference, SH bands 1–3 are rotated along with the geometry,
so view-dependent colour stays right in every file.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from pipeline.contract import ROTATED_PLY, SOG_FILE, SPLAT_FILE, SPLAT_PLY
from pipeline.export.ply import finite_mask, write_ply
from pipeline.export.rotate import (
    COLMAP_TO_NERFSTUDIO,
    COLMAP_TO_OUTPUT,
    NERFSTUDIO_TO_OUTPUT,
    as_rotation,
    rotate_splats,
)
from pipeline.export.splat_format import write_splat
from pipeline.formats.arrays import SplatArrays
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats

__all__ = ["ExportConfig", "ExportResult", "export_all", "filter_for_export"]

logger = logging.getLogger(__name__)

# logit(1/255): ns-export drops Gaussians that can never reach one 8-bit step of opacity.
MIN_LOGIT_OPACITY = -5.5373


@dataclass(frozen=True)
class ExportConfig:
    """How step 4 writes its files.

    Attributes:
        min_logit_opacity: Gaussians with a lower logit opacity are dropped (nerfstudio's
            ``-5.5373`` = logit(1/255)); ``None`` keeps them all.
        rotate_sh: rotate SH bands 1–3 with the frame (``False`` reproduces the reference,
            whose ``splat_rot.ply`` keeps the old frame's view-dependent colour).
        splat_ply: file name of the nerfstudio-frame PLY.
        rotated_ply: file name of the output-frame PLY.
        rotated_splat: file name of the output-frame ``.splat`` (the required artifact).
        rotated_sog: file name of the output-frame SOG (PlayCanvas v2, SH kept), written best
            effort after the ``.splat``; ``None`` writes none.
    """

    min_logit_opacity: float | None = MIN_LOGIT_OPACITY
    rotate_sh: bool = True
    splat_ply: str = SPLAT_PLY
    rotated_ply: str = ROTATED_PLY
    rotated_splat: str = SPLAT_FILE
    rotated_sog: str | None = SOG_FILE


@dataclass
class ExportResult:
    """What :func:`export_all` wrote.

    Attributes:
        splat_ply: path of ``splat.ply`` (nerfstudio frame).
        rotated_ply: path of ``splat_rot.ply`` (output frame).
        rotated_splat: path of ``splat_rot.splat`` (output frame).
        count: Gaussians written to each file.
        dropped_non_finite: Gaussians dropped for a NaN or infinite parameter.
        dropped_transparent: Gaussians dropped for logit opacity below the threshold.
        nerfstudio_splats: the exported Gaussians in nerfstudio's frame (what the preview
            renders, so that it needs no second load).
        nerfstudio_up: ``[3]`` unit up vector in nerfstudio's frame.
        nerfstudio_frame: the scene frame in nerfstudio's frame, when one was given.
        rotated_sog: path of ``splat_rot.sog`` (output frame); ``None`` when none was asked
            for or its compression failed.
        warnings: best-effort failures (the SOG), one line each.
    """

    splat_ply: Path
    rotated_ply: Path
    rotated_splat: Path
    count: int
    dropped_non_finite: int
    dropped_transparent: int
    nerfstudio_splats: Splats
    nerfstudio_up: NDArray[np.float64]
    nerfstudio_frame: SceneFrame | None = None
    rotated_sog: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        """File name → path, for the ``done`` progress event."""
        files = [self.splat_ply, self.rotated_ply, self.rotated_splat, self.rotated_sog]
        return {p.name: str(p) for p in files if p is not None}


def filter_for_export(
    splats: Splats, min_logit_opacity: float | None = MIN_LOGIT_OPACITY
) -> tuple[Splats, int, int]:
    """Drop Gaussians with a non-finite parameter or (optionally) too low an opacity.

    Returns:
        ``(kept, dropped_non_finite, dropped_transparent)``.
    """
    finite = finite_mask(splats)
    keep = finite.clone()
    if min_logit_opacity is not None:
        keep &= splats.logit_opacities.detach() >= min_logit_opacity
    n_finite, n_kept = int(finite.sum()), int(keep.sum())
    kept = splats.detach() if n_kept == len(splats) else splats.detach().select(keep)
    return kept, len(splats) - n_finite, n_finite - n_kept


def export_all(
    splats: Splats,
    out_dir: Path,
    up: ArrayLike | SceneFrame,
    config: ExportConfig | None = None,
) -> ExportResult:
    """Write the export files for trained splats (the SOG best effort).

    Args:
        splats: trained Gaussians in the COLMAP frame (any device, any float dtype).
        out_dir: folder to write into (``refined/splatter`` in a job), created if needed.
        up: the scene frame (:class:`~pipeline.scene_frame.SceneFrame`) or just a ``[3]``
            world-up direction, in the COLMAP frame; recorded in the PLY headers (``Up
            Vector`` and, for a frame, ``Scene Center``, ``Radius``, ``Half Height``,
            ``Up Rule``), rotated into each file's frame.
        config: file names and filters; defaults as :class:`ExportConfig`.

    Raises:
        ValueError: ``up`` is zero or not finite.
    """
    cfg = config or ExportConfig()
    frame = up if isinstance(up, SceneFrame) else None
    up_colmap = up.up if isinstance(up, SceneFrame) else _unit_vector(up)
    kept, non_finite, transparent = filter_for_export(splats.detach(), cfg.min_logit_opacity)
    kept = _to_cpu_float32(kept)
    ns_splats = rotate_splats(kept, COLMAP_TO_NERFSTUDIO, rotate_sh_bands=True)
    ns_up = as_rotation(COLMAP_TO_NERFSTUDIO) @ up_colmap
    out_splats = rotate_splats(ns_splats, NERFSTUDIO_TO_OUTPUT, rotate_sh_bands=cfg.rotate_sh)
    out_up = NERFSTUDIO_TO_OUTPUT @ ns_up
    ns_frame = frame.rotated(COLMAP_TO_NERFSTUDIO) if frame is not None else None
    out_frame = frame.rotated(COLMAP_TO_OUTPUT) if frame is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(
        splat_ply=out_dir / cfg.splat_ply,
        rotated_ply=out_dir / cfg.rotated_ply,
        rotated_splat=out_dir / cfg.rotated_splat,
        count=len(kept),
        dropped_non_finite=non_finite,
        dropped_transparent=transparent,
        nerfstudio_splats=ns_splats,
        nerfstudio_up=ns_up,
        nerfstudio_frame=ns_frame,
    )
    ns_comments = _comments("nerfstudio (A * COLMAP)", ns_frame)
    write_ply(result.splat_ply, ns_splats, ns_up, ns_comments)
    out_comments = _comments("output (Rz(-90 deg) * COLMAP)", out_frame)
    write_ply(result.rotated_ply, out_splats, out_up, out_comments)
    write_splat(result.rotated_splat, out_splats)
    if cfg.rotated_sog is not None:
        _write_sog_best_effort(out_dir / cfg.rotated_sog, out_splats, result)
    return result


def _write_sog_best_effort(path: Path, splats: Splats, result: ExportResult) -> None:
    """``splat_rot.sog``; a failure becomes a warning (the ``.splat`` is already written)."""
    from pipeline.formats.sog import write_sog

    try:
        write_sog(path, SplatArrays.from_splats(splats))
    except Exception as exc:  # best effort, like the reference's compress_sog.py
        message = f"SOG compression failed; .splat file is still available: {exc}"
        logger.warning(message)
        result.warnings.append(message)
        return
    result.rotated_sog = path


def _comments(frame: str, scene: SceneFrame | None) -> list[str]:
    try:
        version = importlib.metadata.version("splatter-node")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    extra = scene.header_comments() if scene is not None else []
    return [f"Generated by splatter-node {version}", f"Frame: {frame}", *extra]


def _unit_vector(v: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(a)) if a.shape == (3,) else 0.0
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"up must be a finite, non-zero 3-vector, got {v!r}")
    return a / norm


def _to_cpu_float32(splats: Splats) -> Splats:
    return Splats(*(t.detach().to("cpu", torch.float32) for t in splats.tensors()))
