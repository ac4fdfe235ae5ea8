"""A node on loopback HTTP (the real app, store, runner, supervisor and domain client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from app import CAPABILITY
from app.main import create_app
from app.services import LeaseDoor
from app.settings import Settings
from tests.app.serving import serve

FINAL_STATES = ("succeeded", "failed", "cancelled")


@dataclass
class Node:
    url: str
    client: httpx.AsyncClient
    app: FastAPI

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

    async def jobs(self) -> list[dict[str, Any]]:
        response = await self.client.get("/jobs")
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def wait_state(self, job_id: str, *states: str, within_s: float = 20.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for _ in range(int(within_s / 0.05)):
            seen = await self.job(job_id)
            if seen["state"] in (states or FINAL_STATES):
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} stayed {seen.get('state')}: {seen.get('error')}")


@asynccontextmanager
async def running_node(
    settings: Settings, *, token: str | None = None, lease_door: LeaseDoor | None = None
) -> AsyncIterator[Node]:
    app = create_app(settings, lease_door=lease_door)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=headers) as client:
        yield Node(url, client, app)
