"""Bearer auth on job routes and the request body limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import CAPABILITY
from app.api.limits import BodySizeLimit
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-api-token"


async def test_job_routes_require_the_bearer_when_a_token_is_set(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = make_settings(tmp_path, splatter_api_token=TOKEN)
    body = push_envelope(emulator, emulated_scene(emulator))
    async with running_node(settings) as node:
        anonymous = await node.client.post(CAPABILITY, json=body)
        wrong = await node.client.get("/jobs", headers={"Authorization": "Bearer nope"})
        basic = await node.client.get("/jobs", headers={"Authorization": "Basic dTpw"})
        delete = await node.client.delete("/jobs/some-id")
        right = await node.client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
        health = await node.client.get("/health")
        ready = await node.client.get("/ready")
        metrics = await node.client.get("/metrics")
        listed = await node.client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "missing bearer token"}
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid bearer token"})
    assert basic.status_code == 401 and delete.status_code == 401
    assert right.status_code == 200
    assert (health.status_code, ready.status_code, metrics.status_code) == (200, 200, 200)
    assert listed.json()["count"] == 0  # the refused push created nothing


async def test_with_the_right_bearer_a_push_is_accepted(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = make_settings(tmp_path, "write-splat", splatter_api_token=TOKEN)
    body = push_envelope(emulator, emulated_scene(emulator))
    async with running_node(settings, token=TOKEN) as node:
        response = await node.client.post(CAPABILITY, json=body)
        done = await node.wait_state(response.json()["id"])
    assert response.status_code == 202
    assert done["state"] == "succeeded", done["error"]


async def test_a_100_mb_body_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        parts = urlsplit(node.url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            f"POST {CAPABILITY} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n".encode()
            + b'{"task": "'
            + b"x" * 65536
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
        listed = (await node.client.get("/jobs")).json()
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b'"detail":"request body larger than 2097152 bytes"' in head
    assert listed["count"] == 0


async def _echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


def _limited(max_bytes: int) -> httpx.AsyncClient:
    app = BodySizeLimit(Starlette(routes=[Route("/", _echo_length, methods=["POST"])]), max_bytes)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_streamed_body_without_length_is_cut_off_at_the_limit() -> None:
    sent: list[int] = []

    async def hundred_megabytes() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * (1024 * 1024)

    async with _limited(2 * 1024 * 1024) as client:
        response = await client.post("/", content=hundred_megabytes())
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 2097152 bytes"}
    assert len(sent) <= 4  # the application stopped reading right after the limit


async def test_bodies_within_the_limit_pass_untouched() -> None:
    async with _limited(1024) as client:
        small = await client.post("/", content=b"y" * 1024)
        declared = await client.post("/", content=b"y" * 1025)
    assert small.json() == {"received": 1024}
    assert declared.status_code == 413
