"""Liveness, readiness and metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.schemas import ReadyPublic
from app.metrics import CONTENT_TYPE
from app.runner.workspace import check_free_disk
from app.services import Services

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness", response_class=Response)
async def health() -> Response:
    """200 with an empty body while the process serves requests (as the reference node)."""
    return Response(status_code=status.HTTP_200_OK)


@router.get(
    "/ready",
    summary="Readiness",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "A component is not usable."}},
)
async def ready(services: ServicesDep) -> JSONResponse:
    """200 when the worker, the job store, the pipeline command and the disk are usable."""
    checks = _checks(services)
    body = ReadyPublic(
        ready=all(v == "ok" for v in checks.values()),
        checks=checks,
        mode={
            "lease": services.settings.lease_mode,
            "push": True,
            "watch": services.watch is not None,
        },
        state="busy" if services.supervisor.busy else "idle",
    )
    code = status.HTTP_200_OK if body.ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(), status_code=code)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)


def _checks(services: Services) -> dict[str, str]:
    settings = services.settings
    checks = {
        "store": "ok" if services.store.ping() else "job store does not answer",
        "worker": "ok" if services.jobs.healthy else "push worker is not running",
        "pipeline": services.supervisor.check_command() or "ok",
        "tasks_root": "ok"
        if os.access(settings.tasks_root, os.W_OK)
        else f"{settings.tasks_root} is not writable",
    }
    if services.lease_door is not None:
        checks["lease"] = "ok" if services.lease_door.healthy else "lease engine stopped"
    if services.watch is not None:
        checks["watch"] = services.watch.problem or "ok"
    try:
        check_free_disk(settings.tasks_root, settings.min_free_disk_mb)
        checks["disk"] = "ok"
    except Exception as exc:
        checks["disk"] = str(exc)
    return checks
