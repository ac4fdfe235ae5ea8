"""Every exception the API maps to a response, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.jobs.errors import (
    DuplicateTaskError,
    IntakeUnavailableError,
    JobFinishedError,
    QueueFullError,
    TokenNotAcceptedError,
)
from app.store import JobNotFoundError
from app.targets import ForbiddenTargetError

__all__ = ["UnauthorizedError", "register_exception_handlers"]


class UnauthorizedError(Exception):
    """Missing or wrong bearer token on a job route."""


def _detail(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return _detail(401, str(exc) or "unauthorized", **{"WWW-Authenticate": "Bearer"})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _detail(404, f"job {exc} not found")


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return _detail(409, str(exc))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return _detail(503, str(exc))


async def _queue_full(request: Request, exc: Exception) -> JSONResponse:
    retry_after = exc.retry_after_s if isinstance(exc, QueueFullError) else 60
    return _detail(429, str(exc), **{"Retry-After": str(retry_after)})


async def _forbidden_target(request: Request, exc: Exception) -> JSONResponse:
    return _detail(422, str(exc))


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UnauthorizedError, _unauthorized)
    app.add_exception_handler(JobNotFoundError, _not_found)
    app.add_exception_handler(JobFinishedError, _conflict)
    app.add_exception_handler(DuplicateTaskError, _conflict)
    app.add_exception_handler(TokenNotAcceptedError, _conflict)
    app.add_exception_handler(QueueFullError, _queue_full)
    app.add_exception_handler(ForbiddenTargetError, _forbidden_target)
    app.add_exception_handler(IntakeUnavailableError, _unavailable)
