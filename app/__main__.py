"""``python -m app``: the node as one uvicorn process (port 8080 by default).

The configuration comes from the environment (:mod:`app.settings`); an invalid one is reported
variable by variable, without echoing values, and the process exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from app.logs import configure_logging
from app.main import create_app
from app.settings import get_settings

__all__ = ["main"]


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem: the variable name (upper case) and the rule, never the value."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        location = ".".join(str(part) for part in problem["loc"]).upper()
        lines.append(f"{location}: {message}" if location else message)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # configuration is environment-only, like the reference node
    try:
        settings = get_settings()
    except ValidationError as error:
        print("splatter-node: invalid configuration", file=sys.stderr)
        for line in describe_errors(error):
            print(f"  {line}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level, settings.secret_values())
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
    raise SystemExit(main(sys.argv[1:]))
