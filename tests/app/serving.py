"""Real loopback HTTP for node tests: serve an ASGI app with uvicorn on an ephemeral port, in
the test's event loop (:func:`serve`) or in a thread of its own (:class:`ThreadedServer`); a
``progress_url`` receiver to serve (:func:`progress_receiver`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.support.waiting import eventually


def progress_receiver(received: list[dict[str, Any]]) -> Starlette:
    """A ``progress_url`` app: every JSON body POSTed to ``/progress`` is appended to
    ``received`` (in arrival order); answers ``{}``."""

    async def record(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({})

    return Starlette(routes=[Route("/progress", record, methods=["POST"])])


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Runs ``app`` (lifespan included) on 127.0.0.1; yields its base URL; stops it after."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done())
    if task.done():
        task.result()
        raise RuntimeError("server stopped during start-up")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class ThreadedServer:
    """An ASGI app under uvicorn on a free 127.0.0.1 port, in a daemon thread: it keeps
    answering while the test's own event loop is busy or blocked (``with`` block)."""

    def __init__(self, app: ASGIApp) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the threaded server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
