"""``python -m pipeline <command>``: the pipeline's command line.

Each command lives in ``pipeline/commands/<name>.py`` and provides
``add_parser(subparsers) -> None`` (registering its arguments and ``func``). Only the module of
the command being run is imported (``convert`` must not pay for torch); ``--help`` without a
command imports them all to list them. ``func(args)``
returns the exit code. A :class:`~pipeline.errors.PipelineError` escaping a command is printed
as one line on stderr (``error: <message>``) and exits with code 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Sequence

from pipeline.errors import PipelineError

__all__ = ["main"]

# Command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("run", "train", "synthetic", "convert", "preview", "view")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that command's module is imported (others get a
    bare entry, enough to parse a command line that names ``command``)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what is logged on stderr (default: info)",
    )
    parser.add_argument("--version", action="version", version=f"splatter-node {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        if command is None or name == command:
            importlib.import_module(f"pipeline.commands.{name}").add_parser(subparsers)
        else:
            subparsers.add_parser(name)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("splatter-node")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command an argument list names (the first argument that is a command name)."""
    return next((arg for arg in argv if arg in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(chosen_command(arguments)).parse_args(arguments)
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
