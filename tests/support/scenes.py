"""The demo scene's Gaussians (the synthetic room) and its job outputs, for viewer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.export import ExportResult, export_all
from pipeline.preview import OrbitConfig, PreviewConfig, render_preview
from pipeline.render import get_rasterizer
from pipeline.splats import Splats
from pipeline.synthetic.scene import build_room

__all__ = ["ROOM_UP", "room_splats", "write_room_outputs"]

ROOM_UP = np.array([0.0, -1.0, 0.0])
"""The room's up vector in its own (COLMAP-style, y down) frame."""


def room_splats(n: int = 9000, seed: int = 0) -> Splats:
    """The synthetic room as stored parameters (COLMAP frame, SH degree 0)."""
    g = build_room(n, torch.Generator().manual_seed(seed)).gaussians
    return Splats(g.means, g.quats, torch.log(g.scales), torch.logit(g.opacities), g.sh)


def write_room_outputs(
    folder: Path, n: int = 9000, *, stills: bool = False, size: tuple[int, int] = (320, 180)
) -> ExportResult:
    """What a job leaves in ``refined/splatter``: the exports and the preview camera path
    (plus the stills when asked; never the video)."""
    exported = export_all(room_splats(n), folder, up=ROOM_UP)
    orbit = OrbitConfig(width=size[0], height=size[1])
    config = PreviewConfig(orbit=orbit, stills=stills, video=False)
    up = exported.nerfstudio_frame or exported.nerfstudio_up  # as pipeline.run passes it
    render_preview(exported.nerfstudio_splats, up, get_rasterizer("cpu"), folder, config)
    return exported
