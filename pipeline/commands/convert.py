"""``python -m pipeline convert IN OUT [--rotate]``: convert between splat file formats.

The format of each file comes from its extension: ``.ply`` (3DGS PLY, ASCII or binary, from
this project or another trainer), ``.splat`` (antimatter15; ply2splat's exact bytes), ``.sog``
(PlayCanvas SOG v2) and ``.spz`` (Niantic SPZ v2). Any of them converts to any other. ``.splat``
keeps only the DC colour, so a ``.splat`` input gives SH degree 0 (the command says so) and a
``.splat`` output drops SH bands 1–3.

``--rotate`` first applies the reference's ``rotate_ply.py`` rotation (nerfstudio frame →
output frame; SH bands are rotated along when the output keeps them), so
``convert splat.ply out.splat --rotate`` gives what the reference published as
``splat_rot.splat``.

Output (:mod:`pipeline.console`): on a terminal, a line per note and ``wrote N Gaussians to
OUT``; JSON lines when stdout is not a terminal or with ``--json`` (a ``warning`` per note, then
``done`` with the output and ``metrics.gaussians``); nothing with ``--quiet``.

This module imports only what the two formats need: PLY → ``.splat`` loads numpy alone, never
numba, torch or plyfile (``--rotate`` does load torch).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert splats between .ply, .splat, .sog and .spz (by extension)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="splat file to read (.ply, .splat, .sog, .spz)")
    parser.add_argument("output", type=Path, help="file to write; its extension picks the format")
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="rotate from nerfstudio's frame into the reference's output frame first "
        "(default: off)",
    )
    from pipeline.console import add_output_options

    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.console import is_human
    from pipeline.errors import PipelineError
    from pipeline.formats.registry import format_for, read_splats, write_splats

    started = time.perf_counter()
    human = is_human(args)
    emit = _event_writer(args, human)
    source, target = format_for(args.input), format_for(args.output)
    splats = read_splats(args.input, dc_only=target.max_sh_degree == 0)
    if source.max_sh_degree == 0 and target.max_sh_degree > 0:
        note = (
            f"{args.input}: the {source.name} format stores no spherical harmonics, so "
            f"{args.output} gets the DC colour only (SH degree 0)"
        )
        if human:
            print(f"note: {note}")
        emit({"event": "warning", "stage": "export", "message": note})
    if args.rotate:
        splats = _rotated(splats, rotate_sh=target.max_sh_degree > 0)
    try:
        count = write_splats(args.output, splats, source=args.input)
    except OSError as exc:
        raise PipelineError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    if human:
        print(f"wrote {count} Gaussians to {args.output}")
    duration = round(time.perf_counter() - started, 3)
    emit({"event": "done", "outputs": {args.output.name: str(args.output)},
          "metrics": {"gaussians": count}, "warnings": [], "duration_s": duration})  # fmt: skip
    return 0


def _event_writer(args: argparse.Namespace, human: bool) -> Callable[[dict[str, Any]], None]:
    """Writes one event as a JSON line on stdout, or nothing (a terminal, ``--quiet``). The
    lines have the wire shape of :mod:`pipeline.contract`'s events (``parse_event`` reads
    them; a test checks it), written with ``json`` alone so that ``convert`` does not pay for
    importing pydantic."""

    def write(event: dict[str, Any]) -> None:
        if not (human or args.quiet):
            print(json.dumps(event, allow_nan=False), flush=True)

    return write


def _rotated(splats: Any, rotate_sh: bool) -> Any:
    """``splats`` in the reference's output frame (loads torch for the SH rotation)."""
    from pipeline.export.rotate import NERFSTUDIO_TO_OUTPUT, rotate_splats
    from pipeline.formats.arrays import SplatArrays

    turned = rotate_splats(splats.to_splats(), NERFSTUDIO_TO_OUTPUT, rotate_sh_bands=rotate_sh)
    return SplatArrays.from_splats(turned)
