"""Jobs: list, inspect, cancel, hand a push job a fresh domain token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.api.deps import AuthDep, JobsDep
from app.api.schemas import ErrorPublic, JobPublic, JobsPublic, JobSummary
from app.jobs.envelope import TokenGrant
from app.records import JobState

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[AuthDep])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such job."}
}
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Missing or wrong bearer token."}
}


@router.get("", response_model=JobsPublic, responses=_UNAUTHORIZED)
async def list_jobs(
    jobs: JobsDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobsPublic:
    """Jobs, newest first, optionally in one state."""
    records, count = jobs.list_jobs(state, limit, offset)
    return JobsPublic(data=[JobSummary.of(r) for r in records], count=count)


@router.get("/{job_id}", response_model=JobPublic, responses={**_NOT_FOUND, **_UNAUTHORIZED})
async def get_job(
    job_id: str, jobs: JobsDep, events_after: Annotated[int, Query(ge=0)] = 0
) -> JobPublic:
    """State, latest progress JSON, events (after `events_after`), artifacts and error."""
    record = jobs.get(job_id)
    return JobPublic.with_events(record, jobs.events(job_id, after=events_after))


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses={
        **_NOT_FOUND,
        **_UNAUTHORIZED,
        409: {"model": ErrorPublic, "description": "The job has already ended."},
    },
)
async def cancel_job(job_id: str, jobs: JobsDep) -> JobPublic:
    """Cancels the job: a queued one at once, a running one by stopping its pipeline
    (SIGTERM, then SIGKILL after `CANCEL_GRACE_SECS`). Poll `GET /jobs/{id}` for the end."""
    record = jobs.cancel(job_id)
    return JobPublic.with_events(record, jobs.events(job_id))


@router.put(
    "/{job_id}/token",
    response_model=JobPublic,
    responses={
        **_NOT_FOUND,
        **_UNAUTHORIZED,
        409: {"model": ErrorPublic, "description": "The job has ended, or is a lease job."},
        422: {"description": "No token, or one that has already expired."},
    },
)
async def replace_token(job_id: str, grant: TokenGrant, jobs: JobsDep) -> JobPublic:
    """Hands a queued or running push job a fresh domain token. A job whose domain server
    answered 401 waits up to `TOKEN_WAIT_SECS` for this, then continues with the new token."""
    record = jobs.replace_token(job_id, grant)
    return JobPublic.with_events(record, jobs.events(job_id))
