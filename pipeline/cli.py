"""``python -m pipeline <command>``: the pipeline's command line.

Each command lives in ``pipeline/commands/<name>.py`` and provides
``add_parser(subparsers) -> None`` (registering its arguments and ``func``). ``func(args)``
returns the exit code. A :class:`~pipeline.errors.PipelineError` escaping a command is printed
as one line on stderr (``error: <message>``) and exits with code 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipeline.errors import PipelineError

__all__ = ["main"]

# Command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("run", "train", "synthetic", "convert", "preview")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"pipeline.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
