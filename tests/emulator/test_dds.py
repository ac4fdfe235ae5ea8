"""DDS over real HTTP: nonces, SIWE registration, SIWE login, and every rejection."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from emulator import EmulatorServer
from tests.emulator.factories import (
    CAPABILITY,
    OTHER_KEY,
    TEST_ADDRESS,
    TEST_KEY,
    address_of,
    bearer,
    jwt_claims,
    login,
    register,
    request_nonce,
    sign,
    signed_message,
    siwe_message,
)
from tests.support.emulator import StartEmulator

REGISTER = "/internal/v1/nodes/register-wallet"
VERIFY = "/internal/v1/auth/siwe/verify"


def _register_body(message: str, signature: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "message": message,
        "signature": signature,
        "registration_credentials": "emulator-reg-secret",
        "capabilities": [CAPABILITY],
        "version": "1.0.0",
    }
    return body | overrides


def test_nonce_carries_the_siwe_fields(http: httpx.Client, emulator: EmulatorServer) -> None:
    nonce = request_nonce(http, TEST_ADDRESS)
    assert set(nonce) == {"nonce", "domain", "uri", "version", "chainId", "issuedAt"}
    assert nonce["nonce"] and nonce["nonce"].isalnum()
    assert nonce["uri"] == emulator.dds_base_url
    assert nonce["domain"] == emulator.dds_base_url.removeprefix("http://")
    assert nonce["version"] == "1" and nonce["chainId"] == 8453
    issued = datetime.fromisoformat(nonce["issuedAt"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - issued).total_seconds()) < 5
    assert request_nonce(http, TEST_ADDRESS)["nonce"] != nonce["nonce"]


def test_nonce_for_a_malformed_wallet_is_400(http: httpx.Client) -> None:
    response = http.post("/internal/v1/auth/siwe/request", json={"wallet": "0x1234"})
    assert response.status_code == 400
    assert "40 hex digits" in response.json()["detail"]


def test_nonce_needs_a_json_body(http: httpx.Client) -> None:
    response = http.post("/internal/v1/auth/siwe/request", content=b"wallet=x")
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    response = http.post("/internal/v1/auth/siwe/request", json={})
    assert response.status_code == 400
    assert "wallet: Field required" in response.json()["detail"]


def test_registration_then_login_with_the_test_vector_key(
    http: httpx.Client, emulator: EmulatorServer
) -> None:
    assert address_of(TEST_KEY) == TEST_ADDRESS
    response = register(http, capabilities=[CAPABILITY, "/other/v1"], version="2.3.4")
    assert response.status_code == 200, response.text
    node = emulator.state.registry.nodes[TEST_ADDRESS]
    assert node.capabilities == [CAPABILITY, "/other/v1"] and node.version == "2.3.4"

    response = login(http)
    assert response.status_code == 200, response.text
    body = response.json()
    expires = datetime.fromisoformat(body["access_expires_at"].replace("Z", "+00:00"))
    assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3601
    claims = jwt_claims(body["access_token"])
    assert claims["iss"] == "dds" and claims["sub"] == TEST_ADDRESS
    # The token is a DMS bearer now.
    assert http.get("/v1/tasks", headers=bearer(body["access_token"])).status_code == 204


def test_reregistration_updates_the_record(http: httpx.Client, emulator: EmulatorServer) -> None:
    assert register(http, capabilities=["/a/v1"]).status_code == 200
    assert register(http, capabilities=["/b/v1"]).status_code == 200
    node = emulator.state.registry.nodes[TEST_ADDRESS]
    assert node.capabilities == ["/b/v1"] and node.registrations == 2


def test_wrong_registration_secret_is_401(http: httpx.Client, emulator: EmulatorServer) -> None:
    response = register(http, secret="not-the-secret")
    assert response.status_code == 401
    assert "registration_credentials" in response.json()["detail"]
    assert TEST_ADDRESS not in emulator.state.registry.nodes


def test_signature_by_another_key_is_401(http: httpx.Client) -> None:
    message, _ = signed_message(http, TEST_KEY)
    response = http.post(REGISTER, json=_register_body(message, sign(message, OTHER_KEY)))
    assert response.status_code == 401
    assert f"not by {TEST_ADDRESS}" in response.json()["detail"]


def test_malformed_signature_is_401(http: httpx.Client) -> None:
    message, _ = signed_message(http, TEST_KEY)
    response = http.post(REGISTER, json=_register_body(message, "0x" + "ab" * 10))
    assert response.status_code == 401
    assert "130 hex digits" in response.json()["detail"]


def test_nonce_is_single_use(http: httpx.Client) -> None:
    message, signature = signed_message(http, TEST_KEY)
    assert http.post(REGISTER, json=_register_body(message, signature)).status_code == 200
    again = http.post(REGISTER, json=_register_body(message, signature))
    assert again.status_code == 401
    assert "unknown or was already used" in again.json()["detail"]


def test_nonce_issued_to_another_wallet_is_refused(http: httpx.Client) -> None:
    nonce = request_nonce(http, address_of(OTHER_KEY))
    message = siwe_message(nonce, TEST_ADDRESS)
    response = http.post(REGISTER, json=_register_body(message, sign(message, TEST_KEY)))
    assert response.status_code == 401
    assert "SIWE address" in response.json()["detail"]


def test_tampered_fields_are_refused(http: httpx.Client) -> None:
    for field, value, shown in [
        ("domain", "evil.example", "SIWE domain"),
        ("uri", "https://evil.example", "SIWE URI"),
        ("chainId", 1, "SIWE Chain ID"),
        ("issuedAt", "2020-01-01T00:00:00Z", "SIWE Issued At"),
        ("version", "2", "SIWE Version"),
    ]:
        nonce = request_nonce(http, TEST_ADDRESS) | {field: value}
        message = siwe_message(nonce, TEST_ADDRESS)
        response = http.post(REGISTER, json=_register_body(message, sign(message, TEST_KEY)))
        assert response.status_code == 401, field
        assert shown in response.json()["detail"]


def test_expired_nonce_is_refused(http: httpx.Client, emulator: EmulatorServer) -> None:
    message, signature = signed_message(http, TEST_KEY)
    emulator.state.advance_clock(301)
    response = http.post(REGISTER, json=_register_body(message, signature))
    assert response.status_code == 401
    assert response.json()["detail"] == "SIWE nonce expired"


def test_malformed_message_is_400(http: httpx.Client) -> None:
    response = http.post(REGISTER, json=_register_body("hello", "0x" + "00" * 65))
    assert response.status_code == 400
    assert "wants you to sign in" in response.json()["detail"]


def test_registration_body_rules(http: httpx.Client) -> None:
    message, signature = signed_message(http, TEST_KEY)
    cases: list[tuple[dict[str, object], str]] = [
        ({"capabilities": []}, "capabilities must list 1–100 entries (got 0)"),
        ({"capabilities": ["/a", "/a"]}, "capabilities contain duplicates"),
        ({"capabilities": ["x" * 257]}, "capability must be 1–256 characters"),
        ({"capabilities": ["/a\n"]}, "capability contains a control character"),
        ({"version": "v1.0"}, "version must be semver"),
    ]
    for override, detail in cases:
        response = http.post(REGISTER, json=_register_body(message, signature, **override))
        assert response.status_code == 400
        assert detail in response.json()["detail"]
    missing = http.post(REGISTER, json={"message": message})
    assert missing.status_code == 400
    assert "registration_credentials: Field required" in missing.json()["detail"]


def test_login_of_an_unregistered_wallet_is_403(http: httpx.Client) -> None:
    response = login(http)
    assert response.status_code == 403
    assert "not registered" in response.json()["detail"]


def test_login_after_deregistration_is_403(http: httpx.Client) -> None:
    assert register(http).status_code == 200
    assert http.delete(f"/_emulator/nodes/{TEST_ADDRESS}").status_code == 204
    assert login(http).status_code == 403


def test_login_address_must_match_the_message(http: httpx.Client) -> None:
    assert register(http).status_code == 200
    message, signature = signed_message(http, TEST_KEY)
    body = {"address": address_of(OTHER_KEY), "message": message, "signature": signature}
    response = http.post(VERIFY, json=body)
    assert response.status_code == 401
    assert "does not match the address in the SIWE message" in response.json()["detail"]


def test_expired_access_token_is_401_at_dms(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(access_token_ttl=60)
    with httpx.Client(base_url=emulator.base_url) as http:
        register(http).raise_for_status()
        token = login(http).json()["access_token"]
        emulator.state.advance_clock(61)
        response = http.get("/v1/tasks", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "access token expired"
    assert response.headers["www-authenticate"].startswith("Bearer")
