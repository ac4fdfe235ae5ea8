"""A node on loopback HTTP with a fake domain behind its push door, and lease envelopes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from app import CAPABILITY
from app.main import create_app
from app.settings import Settings
from tests.app.fakes import FakeDomain, FakePushContexts
from tests.app.serving import serve


@dataclass
class Node:
    url: str
    client: httpx.AsyncClient
    app: FastAPI
    contexts: FakePushContexts

    async def push(self, body: dict[str, Any]) -> dict[str, Any]:
        """POSTs an envelope, expects 202, returns the job."""
        response = await self.client.post(CAPABILITY, json=body)
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        return job

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_state(self, job_id: str, *states: str, within_s: float = 20.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            seen.update(await self.job(job_id))
            return seen["state"] in states

        for _ in range(int(within_s / 0.05)):
            if await reached():
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} stayed {seen.get('state')}: {seen.get('error')}")


@asynccontextmanager
async def running_node(
    settings: Settings,
    domain: FakeDomain | None = None,
    *,
    token: str | None = None,
    push: bool = True,
) -> AsyncIterator[Node]:
    contexts = FakePushContexts(domain or FakeDomain())
    app = create_app(settings, context_factory=contexts if push else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as client:
        yield Node(url, client, app, contexts)


def envelope(domain: FakeDomain, cids: list[str], **task: Any) -> dict[str, Any]:
    """A lease envelope as DMS sends it, for a task over ``domain``."""
    return {
        "access_token": "push-token",
        "access_token_expires_at": "2030-01-01T00:00:00.123456789Z",
        "lease_expires_at": "2030-01-01T00:00:00Z",
        "domain_id": domain.domain_id,
        "domain_server_url": "http://127.0.0.1:9",
        "status": "leased",
        "cancel": None,
        "task": {
            "id": str(uuid.uuid4()),
            "job_id": str(uuid.uuid4()),
            "capability": CAPABILITY,
            "inputs_cids": cids,
            "outputs_prefix": None,
            "priority": -1,
            "billing_units": "1.5",
            **task,
        },
    }
