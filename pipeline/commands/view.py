"""``python -m pipeline view FILE [--port P] [--host H] [--no-browser] [--up=+z]``.

Serves the browser viewer for one local ``.ply``, ``.splat`` or ``.sog`` file on loopback,
prints its URL and opens a browser (unless ``--no-browser``); Ctrl-C stops it. The page needs
the front-end files ``make viewer`` builds; without them it answers 503 saying so.
"""

from __future__ import annotations

import argparse
import threading
import webbrowser
from pathlib import Path
from typing import Any

import uvicorn

from pipeline.commands.preview import parse_up
from pipeline.view.page import NOT_BUILT_MESSAGE, viewer_built
from pipeline.view.server import ViewedFile, create_view_app

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "view",
        help="open a .ply, .splat or .sog file in the browser viewer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help=".ply, .splat or .sog file")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 = any)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    up_help = "scene up: +z, X,Y,Z, or --up=-y (default: the PLY header, else +z)"
    parser.add_argument("--up", type=parse_up, default=None, help=up_help)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    viewed = ViewedFile.open(args.input, args.up)
    if not viewer_built():
        print(f"warning: {NOT_BUILT_MESSAGE}", flush=True)
    config = uvicorn.Config(
        create_view_app(viewed), host=args.host, port=args.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=_announce, args=(server, args), daemon=True).start()
    server.run()
    return 0


def _announce(server: uvicorn.Server, args: argparse.Namespace) -> None:
    """Prints the URL once the server listens (the real port when ``--port 0``)."""
    while not server.started:
        if server.should_exit:
            return
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else args.port
    url = f"http://{args.host}:{port}/"
    print(f"viewer: {url}", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
