"""Admin and test API under `/_emulator` (no auth; loopback tool). Never faulted.

| method + path | what it does |
|---|---|
| GET  /_emulator/info | base URLs, secrets to hand a node, the config |
| GET  /_emulator/nodes, DELETE /_emulator/nodes/{wallet} | registered wallets; deregister one |
| GET  /_emulator/jobs | jobs with their task ids |
| GET  /_emulator/tasks, GET /_emulator/tasks/{id} | state, lease, heartbeats, receipts |
| POST /_emulator/tasks/{id}/cancel | cancel (delivered by the next heartbeat if leased) |
| POST /_emulator/domains/{d}/data?name=&data_type= | seed an item (raw body = content) |
| GET  /_emulator/domains/{d}/data, GET …/data/{id} | list metadata; raw content of one item |
| POST /_emulator/domains/{d}/token | a domain token outside any lease (`{"ttl_s": …}`) |
| GET/POST/DELETE /_emulator/faults | list, arm, disarm injected failures / delays |
| POST /_emulator/clock/advance | move emulated time forward (`{"seconds": …}`) |
| GET/DELETE /_emulator/requests | the request log (`?service=dds|dms|domain`) |
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response

from emulator.clock import rfc3339
from emulator.deps import StateDep, public_url, read_body, read_json
from emulator.errors import bad_request, not_found
from emulator.models import ClockAdvance, FaultCreate, TokenRequest

router = APIRouter(prefix="/_emulator", tags=["emulator admin"])
SEED_MAX_BYTES = 0
"""Seeding is not an upload: no size limit."""


def service_urls(base_url: str) -> dict[str, str]:
    """The base URLs a node is configured with, for one emulator base URL."""
    return {
        "base_url": base_url,
        "dds_base_url": base_url,
        "dms_base_url": f"{base_url}/v1",
        "domain_server_url": base_url,
        "admin_url": f"{base_url}/_emulator",
    }


@router.get("/info")
async def info(request: Request, state: StateDep) -> dict[str, Any]:
    """Where the services are, what to configure a node with, and the active config."""
    config = asdict(state.config)
    config["data_dir"] = str(state.config.data_dir) if state.config.data_dir else None
    config.pop("token_secret")
    return service_urls(public_url(request, state)) | {
        "registration_secret": state.config.registration_secret,
        "app_token": state.config.app_token,
        "now": rfc3339(state.clock.now()),
        "config": config,
    }


# ---------------------------------------------------------------- DDS


@router.get("/nodes")
async def nodes(state: StateDep) -> dict[str, Any]:
    """Registered wallets."""
    with state.lock:
        return {"nodes": [node.to_json() for node in state.registry.nodes.values()]}


@router.delete("/nodes/{wallet}", status_code=204)
async def deregister(wallet: str, state: StateDep) -> None:
    """Forget a wallet (its next SIWE verify answers 403)."""
    if not state.deregister_node(wallet):
        raise not_found(f"wallet {wallet} is not registered")


# ---------------------------------------------------------------- DMS


@router.get("/jobs")
async def jobs(state: StateDep) -> dict[str, Any]:
    """Jobs and their tasks' specs."""
    with state.lock:
        return {"jobs": [state.queue.job_json(job) for job in state.queue.jobs.values()]}


@router.get("/tasks")
async def tasks(state: StateDep) -> dict[str, Any]:
    """Every task's full record."""
    with state.lock:
        return {"tasks": [task.to_json() for task in state.tasks()]}


@router.get("/tasks/{task_id}")
async def task(task_id: str, state: StateDep) -> dict[str, Any]:
    """One task's full record."""
    with state.lock:
        try:
            return state.task(task_id).to_json()
        except KeyError:
            raise not_found(f"unknown task {task_id}") from None


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: str, state: StateDep) -> dict[str, Any]:
    """Cancel a task; a leased one learns it from its next heartbeat."""
    with state.lock:
        return state.cancel_task(task_id).to_json()


# ---------------------------------------------------------------- domain data


@router.post("/domains/{domain_id}/data", status_code=201)
async def seed(
    domain_id: str, request: Request, state: StateDep, name: str, data_type: str
) -> dict[str, Any]:
    """Store the raw request body as an item (replacing one with the same name and type)."""
    content = await read_body(request, SEED_MAX_BYTES)
    return state.seed_data(domain_id, name, data_type, content).to_json()


@router.get("/domains/{domain_id}/data")
async def list_data(domain_id: str, state: StateDep) -> dict[str, Any]:
    """Every item of a domain."""
    return {"data": [item.to_json() for item in state.data_items(domain_id)]}


@router.get("/domains/{domain_id}/data/{data_id}")
async def read_data(domain_id: str, data_id: str, state: StateDep) -> Response:
    """One item's raw content."""
    content = state.read_data(domain_id, data_id)
    return Response(content, media_type="application/octet-stream")


@router.post("/domains/{domain_id}/token")
async def domain_token(domain_id: str, request: Request, state: StateDep) -> dict[str, Any]:
    """A domain token for `domain_id` outside any lease."""
    body = await _token_request(request)
    grant = state.issue_domain_token(domain_id, body.ttl_s, public_url(request, state))
    return {
        "access_token": grant.token,
        "access_token_expires_at": rfc3339(grant.expires_at),
        "domain_id": grant.domain_id,
        "domain_server_url": grant.server_url,
    }


async def _token_request(request: Request) -> TokenRequest:
    """The optional `{"ttl_s": …}` body (no body: defaults)."""
    if not request.headers.get("content-type"):
        return TokenRequest()
    body, _ = await read_json(request, TokenRequest)
    return body


# ---------------------------------------------------------------- faults, clock, log


@router.get("/faults")
async def faults(state: StateDep) -> dict[str, Any]:
    """Armed faults."""
    return {"faults": [asdict(fault) for fault in state.faults.armed()]}


@router.post("/faults", status_code=201)
async def add_fault(request: Request, state: StateDep) -> dict[str, Any]:
    """Arm a fault: `{service, status, count, delay_s, method, path_contains, query_contains,
    after}`."""
    body, _ = await read_json(request, FaultCreate)
    fault = state.add_fault(
        body.service,
        body.status,
        body.count,
        body.delay_s,
        body.method,
        body.path_contains,
        body.query_contains,
        body.after,
    )
    return asdict(fault)


@router.delete("/faults", status_code=204)
async def clear_faults(state: StateDep) -> None:
    """Disarm every fault."""
    state.clear_faults()


@router.post("/clock/advance")
async def advance_clock(request: Request, state: StateDep) -> dict[str, str]:
    """Move emulated time forward."""
    body, _ = await read_json(request, ClockAdvance)
    return {"now": state.advance_clock(body.seconds)}


@router.get("/requests")
async def requests(state: StateDep, service: str | None = None) -> dict[str, Any]:
    """Logged requests, oldest first."""
    if service not in (None, "dds", "dms", "domain", "admin", "other"):
        raise bad_request("service must be one of dds, dms, domain, admin, other")
    records = state.requests.records()
    chosen = [record for record in records if service is None or record.service == service]
    return {"requests": [record.to_json() for record in chosen]}


@router.delete("/requests", status_code=204)
async def clear_requests(state: StateDep) -> None:
    """Forget the request log."""
    state.requests.clear()
