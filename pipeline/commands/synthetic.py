"""``python -m pipeline synthetic``: write a synthetic job folder (scene with known truth)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

from pipeline.commands.sizes import size_argument
from pipeline.synthetic import SyntheticCameraModel, SyntheticConfig, make_synthetic_job

__all__ = ["add_parser", "run"]

_DEFAULTS = SyntheticConfig()


def add_parser(subparsers: Any) -> None:
    """Register the ``synthetic`` command."""
    parser = subparsers.add_parser(
        "synthetic",
        help="write a synthetic job folder (recording, COLMAP model, manifest)",
        description=__doc__,
    )
    parser.add_argument("--job-root", type=Path, required=True, help="folder to write into")
    parser.add_argument("--views", type=int, default=_DEFAULTS.views, help="frames on the orbit")
    parser.add_argument(
        "--size",
        type=size_argument,
        default=(_DEFAULTS.width, _DEFAULTS.height),
        metavar="WxH",
        help="frame size, even numbers (default %(default)s)",
    )
    parser.add_argument("--gaussians", type=int, default=_DEFAULTS.gaussians)
    parser.add_argument("--points", type=int, default=_DEFAULTS.points, help="SfM points sampled")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--scan", default=_DEFAULTS.scan, help="recording name")
    parser.add_argument(
        "--camera-model", default=_DEFAULTS.camera_model, choices=get_args(SyntheticCameraModel)
    )
    parser.add_argument("--fps", type=float, default=_DEFAULTS.fps)
    parser.add_argument("--crf", type=int, default=_DEFAULTS.crf)
    parser.add_argument(
        "--unregistered-every",
        type=int,
        default=0,
        help="leave every N-th frame out of the model (0: none)",
    )
    parser.add_argument("--no-rigs", action="store_true", help="omit rigs.bin and frames.bin")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make the job; print one JSON line describing it on stdout."""
    width, height = args.size
    try:
        config = SyntheticConfig(
            views=args.views,
            width=width,
            height=height,
            gaussians=args.gaussians,
            points=args.points,
            seed=args.seed,
            scan=args.scan,
            camera_model=args.camera_model,
            fps=args.fps,
            crf=args.crf,
            unregistered_every=args.unregistered_every,
            write_rigs=not args.no_rigs,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scene = make_synthetic_job(args.job_root, config)
    summary = {
        "event": "done",
        "job_root": str(args.job_root),
        "video": str(scene.layout.recording(config.scan)),
        "model": str(scene.layout.model_dir),
        "manifest": str(scene.layout.manifest_path),
        "manifest_name": scene.manifest_name,
        "images": len(scene.model.images),
        "points": len(scene.model.points3d),
        "gaussians": len(scene.gaussians),
        "config": asdict(config),
    }
    print(json.dumps(summary))
    return 0
