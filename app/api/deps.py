"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import UnauthorizedError
from app.jobs.service import JobService
from app.services import Services
from app.settings import Settings

__all__ = ["AuthDep", "JobsDep", "ServicesDep", "SettingsDep", "get_app_settings"]

_bearer = HTTPBearer(auto_error=False, description="`SPLATTER_API_TOKEN`, when the node has one.")


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (override in tests)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def get_jobs(services: ServicesDep) -> JobService:
    return services.jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Job routes: the ``SPLATTER_API_TOKEN`` bearer, when one is configured."""
    expected = settings.splatter_api_token
    if expected is None:
        return
    if credentials is None:
        raise UnauthorizedError("missing bearer token")
    if not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise UnauthorizedError("invalid bearer token")


AuthDep = Depends(require_token)
