"""The push door: ``POST /splatter/colmap/v1`` with a lease envelope."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app import CAPABILITY
from app.api.deps import AuthDep, JobsDep
from app.api.schemas import ErrorPublic, JobCreate, JobPublic

router = APIRouter(tags=["intake"], dependencies=[AuthDep])


@router.post(
    CAPABILITY,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Hand a splatter job to this node",
    responses={
        401: {"model": ErrorPublic, "description": "Missing or wrong bearer token."},
        409: {"model": ErrorPublic, "description": "A job for this task is queued or running."},
        413: {"model": ErrorPublic, "description": "Request body over the limit."},
        422: {
            "description": "Not a usable lease envelope (capability, cancel, fields, expired "
            "token, a URL with userinfo/query/fragment or naming a non-public address)."
        },
        429: {
            "model": ErrorPublic,
            "description": "`SPLATTER_MAX_QUEUED` jobs are queued; see `Retry-After`.",
        },
        503: {"model": ErrorPublic, "description": "The node is shutting down."},
    },
)
async def create_job(body: JobCreate, jobs: JobsDep, response: Response) -> JobPublic:
    """Queues the job and answers at once with its id; follow it at `GET /jobs/{id}`.

    The body is the lease envelope DMS returns from `GET /tasks`, plus an optional
    `progress_url` that receives the progress JSON as it changes.
    """
    record = await jobs.accept(body, progress_url=body.progress_url)
    response.headers["Location"] = f"/jobs/{record.id}"
    return JobPublic.with_events(record, jobs.events(record.id))
