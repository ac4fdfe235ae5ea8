"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import CAPABILITY, __version__
from app.api.errors import register_exception_handlers
from app.api.host_guard import LoopbackHostGuard
from app.api.limits import BodySizeLimit
from app.api.routes import health, intake, jobs, viewer
from app.heap import freeze_startup_heap
from app.lease import LeaseModeDoor
from app.services import LeaseDoor, start_services, stop_services
from app.settings import Settings, get_settings, is_loopback_host

__all__ = ["create_app"]

_DESCRIPTION = f"""
A compute node for the Auki network's `{CAPABILITY}` capability: it trains a 3D Gaussian
splat from a refined COLMAP model and the scan recordings, and uploads `splat_data` plus preview
artifacts to the domain server.

Jobs arrive by DMS lease (with `REG_SECRET` and `SECP256K1_PRIVHEX`) or by
`POST {CAPABILITY}` with a lease envelope. Job routes need the `SPLATTER_API_TOKEN` bearer when
one is set; `/health`, `/ready` and `/metrics` are always open.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services = await start_services(app.state.settings, lease_door=app.state.lease_door)
    app.state.services = services
    freeze_startup_heap()  # later full collections skip the start-up heap (app/heap.py)
    try:
        yield
    finally:
        await stop_services(services)


def create_app(
    settings: Settings | None = None,
    *,
    lease_door: LeaseDoor | None = None,
) -> FastAPI:
    """Builds the node's app.

    Args:
        settings: the configuration; :func:`get_settings` (the environment) when omitted.
        lease_door: the lease engine; in lease mode (``REG_SECRET`` and ``SECP256K1_PRIVHEX``
            set) a :class:`LeaseModeDoor` when omitted.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="splatter-node",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    if lease_door is None and settings.lease_mode:
        lease_door = LeaseModeDoor()
    app.state.lease_door = lease_door
    app.add_middleware(BodySizeLimit, max_bytes=settings.splatter_max_body_bytes)
    if is_loopback_host(settings.splatter_host):
        app.add_middleware(LoopbackHostGuard)  # added last: runs first
    register_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(intake.router)
    app.include_router(jobs.router)
    app.include_router(viewer.router)
    return app
