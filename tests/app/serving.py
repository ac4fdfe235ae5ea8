"""Real loopback HTTP for node tests: serve an ASGI app with uvicorn on an ephemeral port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from tests.app.waiting import eventually


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
