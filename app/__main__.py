"""``splatter-node`` / ``python -m app``: the node as one uvicorn process (port 8080 by default).

Commands: ``serve`` (also what no command means) runs the node; ``--help`` and ``--version``
print and exit 0; an unknown command or option exits with status 2 before anything starts. The
configuration comes from the environment (:mod:`app.settings`); an invalid one is reported
variable by variable, without echoing values, and the process exits with status 2. The node's
secrets leave the process environment before the node's modules are even imported
(:mod:`app.node_secrets`); the settings get them directly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from app import __version__
from app.node_secrets import take_node_secrets

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["main"]


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem: the variable name (upper case) and the rule, never the value."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        location = ".".join(str(part) for part in problem["loc"]).upper()
        lines.append(f"{location}: {message}" if location else message)
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``[serve] [--help] [--version]``; everything else is configured by
    environment variables (README, "Configuration")."""
    parser = argparse.ArgumentParser(
        prog="splatter-node",
        description="Gaussian-splat training node for the Auki network (/splatter/colmap/v1). "
        "Configured by environment variables (REG_SECRET, SECP256K1_PRIVHEX, TASKS_ROOT, "
        "SPLATTER_*, ...; see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"splatter-node {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the node: HTTP service, lease engine, worker (default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(sys.argv[1:] if argv is None else argv)  # exits 0 or 2 itself
    return serve()


def serve() -> int:
    """Runs the node until SIGTERM/SIGINT; 2 for an invalid configuration, 3 if it never
    started serving."""
    # The secrets leave os.environ before the node's modules are imported: importing them
    # starts helper processes (pycryptodome runs `file -b`), which inherit the environment.
    secrets = take_node_secrets()
    import uvicorn
    from pydantic import ValidationError

    from app.logs import configure_logging
    from app.main import create_app
    from app.settings import Settings, forget_secret_variables

    try:
        settings = Settings(**cast(dict[str, Any], secrets))
    except ValidationError as error:
        print("splatter-node: invalid configuration", file=sys.stderr)
        for line in describe_errors(error):
            print(f"  {line}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level, settings.secret_values())
    forget_secret_variables(settings)  # the settings hold them; no process we start inherits them
    config = uvicorn.Config(
        create_app(settings),
        host=settings.splatter_host,
        port=settings.splatter_port,
        log_config=None,
        access_log=settings.splatter_access_log,
        lifespan="on",
        # Connections get a few seconds; the lifespan then stops jobs within its own bounds.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 3


if __name__ == "__main__":
    raise SystemExit(main())
