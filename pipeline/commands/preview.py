"""``python -m pipeline preview IN.ply --out DIR [options]``: preview any 3DGS PLY.

Renders ``preview_top.jpg``, ``preview_angle.jpg``, ``preview.mp4`` and
``preview_camera_path.json`` into ``DIR`` without a training run. The scene's up vector comes
from ``--up``, else from the PLY header (our files record it), else +z. When the header
records the whole scene frame (a job's files do) and ``--up`` is not given, the orbit frames its
observed region; otherwise a robust box of the Gaussians. Exits 0 when every file was written;
otherwise prints why and exits 1 (nothing partial is left).

Progress (:mod:`pipeline.console`): a progress bar on a terminal, then the files written; JSON
lines on stdout (``progress``, ``warning``, then ``done`` listing the files) when stdout is not a
terminal or with ``--json``; nothing with ``--quiet``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.commands.sizes import size_argument
from pipeline.console import RichProgress, add_output_options, choose_progress
from pipeline.contract import DoneEvent
from pipeline.errors import InputError, PipelineError
from pipeline.export.ply import read_ply
from pipeline.preview.camera_path import OrbitConfig
from pipeline.preview.previews import PreviewConfig, render_preview
from pipeline.render import get_rasterizer
from pipeline.scene_frame import SceneFrame

__all__ = ["add_parser", "parse_up", "run"]

_DEFAULTS = OrbitConfig()


def parse_up(text: str) -> NDArray[np.float64]:
    """``"+z"``, ``"-y"``, ``"x"`` or ``"0,0,1"`` → a unit vector ``[3]``."""
    t = text.strip().lower()
    if m := re.fullmatch(r"([+-]?)([xyz])", t):
        v = np.zeros(3)
        v["xyz".index(m.group(2))] = -1.0 if m.group(1) == "-" else 1.0
        return v
    try:
        v = np.array([float(p) for p in t.split(",")])
    except ValueError:
        v = np.zeros(0)
    if v.shape != (3,) or not np.isfinite(v).all() or not np.linalg.norm(v) > 0:
        raise argparse.ArgumentTypeError(f"up must be +x/-x/+y/-y/+z/-z or X,Y,Z, got {text!r}")
    return v / np.linalg.norm(v)


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "preview",
        help="render the preview video and stills for a 3DGS PLY",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = _DEFAULTS
    parser.add_argument("input", type=Path, help="3DGS PLY file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seconds", type=float, default=d.seconds,
                        help="video length, 5..10 seconds (default: %(default)s)")  # fmt: skip
    parser.add_argument("--fps", type=float, default=d.fps,
                        help="frames per second (default: %(default)s)")  # fmt: skip
    parser.add_argument("--size", type=size_argument, default=(d.width, d.height),
                        help=f"WxH, even numbers (default: {d.width}x{d.height})")  # fmt: skip
    parser.add_argument("--elevation", type=float, default=d.elevation_deg,
                        help="orbit elevation, 30..45 degrees (default: %(default)s)")  # fmt: skip
    parser.add_argument("--sweep", type=float, default=d.sweep_deg,
                        help="azimuth swept, 270..360 degrees (default: %(default)s)")  # fmt: skip
    up_help = "scene up: +z, X,Y,Z, or --up=-y for negatives (default: the PLY header, else +z)"
    parser.add_argument("--up", type=parse_up, default=None, help=up_help)
    backend_help = "rasterizer: gsplat on CUDA, else CPU (default: %(default)s)"
    parser.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto",
                        help=backend_help)  # fmt: skip
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")  # fmt: skip
    parser.add_argument("--no-video", action="store_true", help="stills only (default: off)")
    parser.add_argument("--no-stills", action="store_true", help="video only (default: off)")
    add_output_options(parser)
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace) -> PreviewConfig:
    try:
        orbit = OrbitConfig(
            seconds=args.seconds, fps=args.fps, width=args.size[0], height=args.size[1],
            elevation_deg=args.elevation, sweep_deg=args.sweep,
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"invalid preview option: {exc}") from exc
    return PreviewConfig(orbit=orbit, stills=not args.no_stills, video=not args.no_video)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    ply = read_ply(args.input)
    up: NDArray[np.float64] | SceneFrame = next(
        (u for u in (args.up, ply.frame, ply.up) if u is not None), np.array([0.0, 0.0, 1.0])
    )
    rasterizer = get_rasterizer(args.backend)
    progress = choose_progress(args)
    try:
        result = render_preview(ply.splats, up, rasterizer, args.out, config, progress)
    finally:
        if isinstance(progress, RichProgress):
            progress.close()
    outputs = {name: str(path) for name, path in sorted(result.outputs.items())}
    progress.emit(DoneEvent(outputs=outputs, warnings=result.warnings, duration_s=result.total_s))
    expected = (2 if config.stills else 0) + (1 if config.video else 0)
    written = sum(1 for name in result.outputs if not name.endswith(".json"))
    if written < expected:
        raise PipelineError(f"preview incomplete: {'; '.join(result.warnings)}")
    return 0
