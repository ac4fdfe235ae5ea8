"""``python -m bench.node.server``: the node (settings from the environment) on a local domain."""

from __future__ import annotations

import uvicorn

from app.logs import configure_logging
from app.main import create_app
from app.settings import Settings
from bench.node.local_domain import LocalContexts


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, "warning", settings.secret_values())
    app = create_app(settings, context_factory=LocalContexts())
    uvicorn.run(
        app, host=settings.splatter_host, port=settings.splatter_port, log_config=None,
        access_log=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
