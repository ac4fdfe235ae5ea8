"""DMS (protocol §1.6–§1.12), mounted under `/v1` so `DMS_BASE_URL=<emulator>/v1` works.

Bearers: `POST /v1/jobs` takes the configured app token; everything under `/v1/tasks` takes a
DDS machine token of a registered wallet. Receipts are stored exactly as received.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from emulator.deps import StateDep, public_url, read_json
from emulator.errors import bad_request, too_large, unauthorized
from emulator.grants import bearer_from_header
from emulator.models import CompleteRequest, FailRequest, HeartbeatRequest, JobCreate
from emulator.registry import NodeRecord
from emulator.rules import FAILURE_REASON_MAX_BYTES

router = APIRouter(prefix="/v1", tags=["DMS"])
AuthorizationHeader = Annotated[str | None, Header(alias="Authorization")]


def current_node(state: StateDep, authorization: AuthorizationHeader = None) -> NodeRecord:
    """The registered node whose DDS access token is the bearer; 401 otherwise."""
    bearer = bearer_from_header(authorization)
    with state.lock:
        return state.registry.authenticate(bearer)


NodeDep = Annotated[NodeRecord, Depends(current_node)]


@router.post("/jobs", status_code=201)
async def create_job(
    request: Request, state: StateDep, authorization: AuthorizationHeader = None
) -> dict[str, Any]:
    """Create a job from the §1.12 body; the bearer must be the configured app token."""
    bearer = bearer_from_header(authorization)
    if not secrets.compare_digest(bearer.encode(), state.config.app_token.encode()):
        raise unauthorized("bearer is not a valid app token")
    body, _ = await read_json(request, JobCreate)
    with state.lock:
        return state.queue.job_json(state.queue.create_job(body))


@router.get("/tasks", response_model=None)
async def lease_task(
    request: Request, state: StateDep, node: NodeDep, capability: str | None = None
) -> Response:
    """200 + lease envelope, 204 when there is no work, 409 when the node already holds one."""
    with state.lock:
        envelope = state.queue.lease(
            node.wallet, node.capabilities, capability, public_url(request, state)
        )
    if envelope is None:
        return Response(status_code=204)
    return JSONResponse(envelope)


@router.post("/tasks/{task_id}/heartbeat")
async def heartbeat(task_id: str, request: Request, state: StateDep, node: NodeDep) -> Any:
    """Record progress/events; answer the incremental lease update (§1.8)."""
    body, _ = await read_json(request, HeartbeatRequest)
    progress_size = len(json.dumps(body.progress).encode())
    if progress_size > state.config.progress_max_bytes:
        limit = state.config.progress_max_bytes
        raise too_large(f"progress is {progress_size} bytes of JSON; the limit is {limit}")
    with state.lock:
        return state.queue.heartbeat(task_id, node.wallet, body.progress, body.events)


@router.post("/tasks/{task_id}/complete")
async def complete(task_id: str, request: Request, state: StateDep, node: NodeDep) -> Any:
    """Record the complete receipt verbatim."""
    _, raw = await read_json(request, CompleteRequest)
    with state.lock:
        task = state.queue.complete(task_id, node.wallet, raw)
    return {"id": task.id, "status": task.status}


@router.post("/tasks/{task_id}/fail")
async def fail(task_id: str, request: Request, state: StateDep, node: NodeDep) -> Any:
    """Record the fail receipt verbatim; reasons over 4096 bytes are refused."""
    body, raw = await read_json(request, FailRequest)
    reason_size = len(body.reason.encode())
    if reason_size > FAILURE_REASON_MAX_BYTES:
        limit = FAILURE_REASON_MAX_BYTES
        raise bad_request(f"reason is {reason_size} bytes; at most {limit} are accepted")
    with state.lock:
        task = state.queue.fail(task_id, node.wallet, raw)
    return {"id": task.id, "status": task.status}
