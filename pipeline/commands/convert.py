"""``python -m pipeline convert IN.ply OUT.splat [--rotate]``: any 3DGS PLY → ``.splat``.

Reads PLYs from this project or other trainers (see :func:`pipeline.export.ply.read_ply`) and
writes ply2splat's exact bytes. ``--rotate`` first applies the reference's ``rotate_ply.py``
rotation (nerfstudio frame → output frame), so ``convert splat.ply out.splat --rotate`` gives
what the reference published as ``splat_rot.splat``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.export.ply import read_ply
from pipeline.export.rotate import NERFSTUDIO_TO_OUTPUT, rotate_splats
from pipeline.export.splat_format import write_splat

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert a 3DGS PLY to the .splat format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="3DGS PLY file (ASCII or binary)")
    parser.add_argument("output", type=Path, help=".splat file to write")
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="rotate from nerfstudio's frame into the reference's output frame first",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    splats = read_ply(args.input, dc_only=True).splats
    if args.rotate:
        # .splat keeps only the DC colour, so there are no SH bands to rotate.
        splats = rotate_splats(splats, NERFSTUDIO_TO_OUTPUT, rotate_sh_bands=False)
    try:
        count = write_splat(args.output, splats)
    except OSError as exc:
        raise PipelineError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {count} Gaussians to {args.output}")
    return 0
