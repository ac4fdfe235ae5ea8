"""The app in-process through httpx.ASGITransport: no public_url configured, so every URL the
emulator hands out is derived from the request, and the Python API drives the setup."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from emulator import EmulatorConfig, EmulatorState, create_app
from tests.emulator.factories import (
    CAPABILITY,
    TEST_ADDRESS,
    TEST_KEY,
    bearer,
    job_body,
    jwt_claims,
    sign,
    siwe_message,
)

BASE = "http://emu.test"


def _client(state: EmulatorState, base_url: str = BASE) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(state=state))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def test_urls_are_derived_from_the_request() -> None:
    state = EmulatorState(EmulatorConfig())
    state.register_node(TEST_ADDRESS, [CAPABILITY])
    token = state.issue_access_token(TEST_ADDRESS)
    domain_id = str(uuid.uuid4())
    state.create_job(job_body(domain_id))

    async def scenario() -> dict[str, object]:
        async with _client(state, f"{BASE}/v1/") as dms:
            lease = await dms.get("tasks", headers=bearer(token))
        return dict(lease.json())

    lease = asyncio.run(scenario())
    assert lease["domain_server_url"] == BASE
    assert jwt_claims(str(lease["access_token"]))["aud"] == [BASE]


def test_siwe_fields_follow_the_request_host() -> None:
    state = EmulatorState(EmulatorConfig())

    async def scenario() -> tuple[dict[str, object], int]:
        async with _client(state) as dds:
            nonce = await dds.post("/internal/v1/auth/siwe/request", json={"wallet": TEST_ADDRESS})
            message = siwe_message(nonce.json(), TEST_ADDRESS)
            body = {
                "message": message,
                "signature": sign(message, TEST_KEY),
                "registration_credentials": "emulator-reg-secret",
                "capabilities": [CAPABILITY],
                "version": "0.0.0-local",
            }
            registered = await dds.post("/internal/v1/nodes/register-wallet", json=body)
        return dict(nonce.json()), registered.status_code

    nonce, status = asyncio.run(scenario())
    assert nonce["uri"] == BASE and nonce["domain"] == "emu.test"
    assert status == 200 and TEST_ADDRESS in state.registry.nodes


def test_configured_siwe_domain_and_chain() -> None:
    state = EmulatorState(EmulatorConfig(siwe_domain="dds.example.com", chain_id=1))

    async def scenario() -> dict[str, object]:
        async with _client(state) as dds:
            response = await dds.post(
                "/internal/v1/auth/siwe/request", json={"wallet": TEST_ADDRESS}
            )
        return dict(response.json())

    nonce = asyncio.run(scenario())
    assert nonce["domain"] == "dds.example.com" and nonce["chainId"] == 1


def test_python_api_domain_token_names_its_audience() -> None:
    state = EmulatorState(EmulatorConfig())
    with pytest.raises(RuntimeError, match="no public_url configured"):
        state.issue_domain_token(str(uuid.uuid4()))
    grant = state.issue_domain_token(str(uuid.uuid4()), server_url=f"{BASE}/")
    assert grant.server_url == BASE

    async def scenario() -> int:
        async with _client(state) as domain:
            url = f"/api/v1/domains/{grant.domain_id}/data"
            return (await domain.get(url, headers=bearer(grant.token))).status_code

    assert asyncio.run(scenario()) == 200
