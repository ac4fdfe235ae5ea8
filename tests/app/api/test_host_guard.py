"""The DNS-rebinding guard: on a loopback bind, only loopback Host names reach the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.api.host_guard import host_name
from tests.app.api.nodes import running_node
from tests.app.factories import make_settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8080", 200),
        ("localhost", 200),
        ("LOCALHOST:1", 200),
        ("[::1]:8080", 200),
        ("127.8.9.10", 200),
        ("evil.example", 421),
        ("evil.example:8080", 421),
        ("127.0.0.1.nip.io", 421),
        ("localhost.evil.example", 421),
        ("[::2]:80", 421),
    ],
)
async def test_a_loopback_node_answers_only_loopback_host_names(
    tmp_path: Path, host: str, status: int
) -> None:
    async with running_node(make_settings(tmp_path)) as node:
        jobs = await node.client.get("/jobs", headers={"Host": host})
        health = await node.client.get("/health", headers={"Host": host})
    assert (jobs.status_code, health.status_code) == (status, status)
    if status == 421:
        assert jobs.json()["detail"].startswith(f"misdirected request: Host {host!r}")


async def test_a_node_on_a_public_address_leaves_the_host_to_its_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, splatter_host="0.0.0.0", splatter_api_token="t0ken")
    async with running_node(settings, token="t0ken") as node:
        response = await node.client.get("/jobs", headers={"Host": "node.example:8080"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "name"),
    [("a.example:80", "a.example"), ("[::1]:8080", "::1"), ("[::1]", "::1"), ("h", "h")],
)
def test_host_name_drops_the_port(header: str, name: str) -> None:
    assert host_name(header) == name
