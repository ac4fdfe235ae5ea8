"""The FastAPI app factory: three services, the admin API, errors, faults and the request log."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from emulator.config import EmulatorConfig
from emulator.deps import describe_validation_error
from emulator.errors import EmulatorError
from emulator.middleware import EmulatorMiddleware
from emulator.routers import admin, dds, dms, domain
from emulator.state import EmulatorState


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> FastAPI:
    """An ASGI app serving DDS (`/internal/v1`), DMS (`/v1`), the domain server (`/api/v1`) and
    the admin API (`/_emulator`). Pass `state` to keep a handle on it; else one is made from
    `config`."""
    if state is None:
        state = EmulatorState(config)
    app = FastAPI(
        title="Auki services emulator",
        description="DDS, DMS and a domain server on loopback, per protocol.md",
        version="1",
    )
    app.state.emulator = state
    for module in (dds, dms, domain, admin):
        app.include_router(module.router)
    app.add_exception_handler(EmulatorError, _emulator_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(EmulatorMiddleware, traffic=lambda: current_state(app))
    return app


def current_state(app: FastAPI) -> EmulatorState:
    """The state an app serves now (`EmulatorServer.reset` swaps it)."""
    state: EmulatorState = app.state.emulator
    return state


async def _emulator_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, EmulatorError):  # registered for EmulatorError only
        raise exc
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Bad query or path parameters: 400 with the offending fields named (not FastAPI's 422)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": describe_validation_error(errors)}, status_code=400)
