"""Protocol §4.7: identity, registration and the DDS token manager (cases 23–29)."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from domain_client import (
    ConfigError,
    DdsAuth,
    DdsClient,
    DmsClient,
    InvalidKeyError,
    LoginError,
    NodeConfig,
    Registrar,
    RegistrationConfig,
    SiweNonce,
    TokenConfig,
    Wallet,
    build_siwe_message,
)
from domain_client.auth import refresh_time
from domain_client.config import normalise_capabilities, package_version
from domain_client.registration import classify_failure
from domain_client.timestamps import format_timestamp
from tests.domain_client.factories import ADDRESS, BASE, CAPABILITY, PRIVATE_KEY, ts
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

NONCE = {
    "nonce": "n-1",
    "domain": "dds.example.com",
    "uri": "https://dds.example.com",
    "version": "1",
    "chainId": 8453,
    "issuedAt": "2026-01-01T00:00:00Z",
}
REG_SECRET = "reg-secret-do-not-log-7f3a"
NONCE_PATH = "/internal/v1/auth/siwe/request"
REGISTER_PATH = "/internal/v1/nodes/register-wallet"
VERIFY_PATH = "/internal/v1/auth/siwe/verify"


def registrar_for(http: httpx.AsyncClient, interval_s: float = 120.0) -> Registrar:
    config = RegistrationConfig(
        reg_secret=REG_SECRET, capabilities=(CAPABILITY,), version="1.2.3", interval_s=interval_s
    )
    return Registrar(DdsClient(http, BASE), Wallet.from_hex(PRIVATE_KEY), config)


def auth_for(http: httpx.AsyncClient, registrar: Registrar | None = None, **config: Any) -> DdsAuth:
    token_config = TokenConfig(**{"jitter_ms": 0, **config})
    return DdsAuth(
        DdsClient(http, BASE),
        Wallet.from_hex(PRIVATE_KEY),
        registrar=registrar,
        config=token_config,
    )


def verify_ok(token: str = "siwe-token", ttl_s: float = 3600.0) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "access_expires_at": ts(ttl_s)})


async def test_case_23_signature_and_address_vectors() -> None:
    wallet = Wallet.from_hex(f"  0x{PRIVATE_KEY}\n")
    assert wallet.address == ADDRESS
    nonce = SiweNonce.model_validate(
        {
            "nonce": "abc123",
            "domain": "example.com",
            "uri": "https://example.com",
            "version": "1",
            "chainId": 1,
            "issuedAt": "2024-05-01T00:00:00Z",
        }
    )
    message = build_siwe_message(nonce, wallet.address)
    assert message == (
        "example.com wants you to sign in with your Ethereum account:\n"
        "0xfdbb6caf01414300c16ea14859fec7736d95355f\n\n"
        "URI: https://example.com\nVersion: 1\nChain ID: 1\nNonce: abc123\n"
        "Issued At: 2024-05-01T00:00:00Z"
    )
    assert wallet.sign_personal(message) == (
        "0x390786f1c4840ec337aef7c4a6d15bba128cc308e2f32f4528e2f8dd44f61f354a68a45bcf7d39eb72"
        "4346a02f6eefebd8a39e20ebf68435bfe026ed47b1e5171b"
    )
    for bad in ("", "zz" * 32, PRIVATE_KEY[:-2], PRIVATE_KEY + "00"):
        with pytest.raises(InvalidKeyError, match="32-byte secp256k1 key") as caught:
            Wallet.from_hex(bad)
        assert PRIVATE_KEY not in str(caught.value)


async def test_case_24_verify_403_rearms_registration_502_does_not(
    http: httpx.AsyncClient,
) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(NONCE_PATH).respond(200, json=NONCE)
        mock.post(REGISTER_PATH).respond(200, json={})
        verify = mock.post(VERIFY_PATH)
        registrar = registrar_for(http)
        assert await registrar.attempt() == "registered"

        verify.respond(502)
        with pytest.raises(LoginError, match=r"server error \(502\)"):
            await auth_for(http, registrar, max_retries=0).token()
        assert registrar.state == "registered"

        verify.respond(403)
        with pytest.raises(LoginError, match="403"):
            await auth_for(http, registrar, max_retries=3).token()
        # mypy keeps the "registered" narrowing from above across the awaits
        assert registrar.state == "disconnected"  # type: ignore[comparison-overlap]
        assert verify.call_count == 2  # a 403 is not retried: the registration is gone


async def test_case_25_register_409_is_conflict(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        nonce = mock.post(NONCE_PATH).respond(409)
        register = mock.post(REGISTER_PATH).respond(409)
        registrar = registrar_for(http, interval_s=120)
        outcome = await registrar.attempt()
    assert outcome == "conflict" and registrar.state == "disconnected"
    assert nonce.call_count == 1 and register.call_count == 0
    assert registrar.delay_after(outcome) == 120


async def test_case_26_loop_parks_after_success(http: httpx.AsyncClient) -> None:
    stop = asyncio.Event()
    with respx.mock(base_url=BASE) as mock:
        nonce = mock.post(NONCE_PATH).respond(200, json=NONCE)
        register = mock.post(REGISTER_PATH).respond(200)
        registrar = registrar_for(http, interval_s=1.0)
        loop = asyncio.create_task(registrar.run(stop))
        await asyncio.sleep(0.3)
        assert registrar.state == "registered"
        await asyncio.sleep(1.3)
        stop.set()
        await asyncio.wait_for(loop, 5)
    assert nonce.call_count == 1 and register.call_count == 1
    sent = register.calls.last.request
    body = httpx.Response(200, content=sent.content).json()
    assert body["registration_credentials"] == REG_SECRET
    assert body["capabilities"] == [CAPABILITY] and body["version"] == "1.2.3"
    assert body["message"].startswith("dds.example.com wants you to sign in")
    assert f"\n{ADDRESS}\n\n" in body["message"] and len(body["signature"]) == 132


async def test_case_27_secrets_never_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wallet = Wallet.from_hex(PRIVATE_KEY)
    message = build_siwe_message(SiweNonce.model_validate(NONCE), wallet.address)
    signature = wallet.sign_personal(message)
    token = "siwe-token-secret-91c2"
    errors: list[str] = []
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post(NONCE_PATH).respond(200, json=NONCE)
        register = mock.post(REGISTER_PATH)
        register.respond(400, json={"error": f"bad credentials {REG_SECRET}"})
        registrar = registrar_for(http)
        assert await registrar.attempt() == "slow_retry"
        register.respond(200)
        assert await registrar.attempt() == "registered"
        verify = mock.post(VERIFY_PATH).respond(
            200, json={"access_token": token, "access_expires_at": ts(3600)}
        )
        auth = auth_for(http, registrar)
        mock.get("/tasks").respond(401, json={"error": f"bad token {token}"})
        try:
            await DmsClient(http, BASE, auth).lease()
        except Exception as exc:  # the replayed 401 is an error: its text must be clean too
            errors.append(f"{exc!r} {exc}")
        verify.respond(403, text=f"no {signature}")
        auth.invalidate(token)
        try:
            await auth.token()
        except Exception as exc:
            errors.append(f"{exc!r} {exc}")
    reprs = [repr(wallet), repr(auth), repr(registrar_for(http)._config)]
    config = NodeConfig(reg_secret=REG_SECRET, secp256k1_privhex=PRIVATE_KEY)
    reprs.append(repr(config))
    for secret in (REG_SECRET, PRIVATE_KEY, signature, signature[2:], token):
        assert secret not in caplog.text
        assert not any(secret in text for text in errors + reprs)
    assert len(errors) == 2 and "unauthorized (401)" in errors[0]


def test_case_28_config_normalisation() -> None:
    """The §3.9 rules on a config object (the environment is parsed by the app's Settings,
    tests/app/test_settings.py::test_case_28_environment_normalisation)."""
    config = NodeConfig(
        reg_secret=REG_SECRET,
        secp256k1_privhex=PRIVATE_KEY,
        dds_base_url="https://dds.example",
        request_timeout_secs=0,
        node_version="v2.3.4",
        register_max_retry=-1,
        client_id="  my-node  ",
    )
    assert config.dds_base_url == "https://dds.example/"
    assert config.request_timeout_secs == 1
    assert config.node_version == "2.3.4"
    assert config.register_max_retry == -1
    assert config.client_id == "my-node"
    assert normalise_capabilities(["/b/v1", "/a/v1", "/b/v1"]) == ("/a/v1", "/b/v1")
    assert NodeConfig(node_version="not-semver").node_version == package_version()
    defaults = NodeConfig(reg_secret=REG_SECRET, secp256k1_privhex=PRIVATE_KEY)
    assert (defaults.dms_base_url, defaults.dds_base_url) == (
        "https://dms.auki.network/v1",
        "https://dds.auki.network/",
    )
    assert (defaults.request_timeout_secs, defaults.register_interval_secs) == (60, 120)
    assert (defaults.poll_backoff_ms_min, defaults.poll_backoff_ms_max) == (1000, 30000)
    assert (defaults.heartbeat_min_ratio, defaults.heartbeat_max_ratio) == (0.25, 0.35)
    assert (
        defaults.token_safety_ratio,
        defaults.token_reauth_max_retries,
        defaults.token_reauth_jitter_ms,
    ) == (0.75, 3, 500)
    assert defaults.client_id.startswith("splatter-node/")
    with pytest.raises(ValidationError, match="REG_SECRET required"):
        NodeConfig(secp256k1_privhex=PRIVATE_KEY)
    with pytest.raises(ValidationError, match="SECP256K1_PRIVHEX required"):
        NodeConfig(reg_secret=REG_SECRET)
    with pytest.raises(ValidationError, match="REQUEST_TIMEOUT_SECS must be 1 to 300, got 301"):
        NodeConfig(request_timeout_secs=301)
    with pytest.raises(ConfigError, match="capabilities: need 1 to 100"):
        normalise_capabilities([])
    with pytest.raises(ConfigError, match="lease mode needs REG_SECRET and SECP256K1_PRIVHEX"):
        NodeConfig().secrets()


async def test_case_29_token_manager(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(NONCE_PATH).respond(200, json=NONCE)
        verify = mock.post(VERIFY_PATH).mock(side_effect=lambda request: verify_ok())
        auth = auth_for(http)
        # Five concurrent callers share one login.
        tokens = await asyncio.gather(*(auth.token() for _ in range(5)))
        assert tokens == ["siwe-token"] * 5 and verify.call_count == 1
        assert await auth.token() == "siwe-token" and verify.call_count == 1
        # A 401 notification forces a new login on the next use.
        auth.invalidate("siwe-token")
        await auth.token()
        assert verify.call_count == 2
        # A failed login attempt is retried.
        verify.mock(side_effect=[httpx.Response(502), verify_ok()])
        auth.invalidate("siwe-token")
        assert await auth.token() == "siwe-token" and verify.call_count == 4

        # Stopping cancels an in-flight login.
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow_verify(request: httpx.Request) -> httpx.Response:
            entered.set()
            await release.wait()
            return verify_ok()

        verify.mock(side_effect=slow_verify)
        slow = auth_for(http)
        caller = asyncio.create_task(slow.token())
        await entered.wait()
        await slow.close()
        with pytest.raises(LoginError, match="closed"):
            await caller
        release.set()

        # Background refresh at TTL × ratio ± jitter; none after stop.
        verify.mock(side_effect=lambda request: verify_ok(ttl_s=2.0))
        background = auth_for(http, safety_ratio=0.25)
        await background.token()
        assert background.refresh_at is not None
        lead = background.refresh_at - datetime.now(UTC)
        assert timedelta(seconds=0.2) < lead <= timedelta(seconds=0.5)
        background.start()
        await eventually(lambda: background.logins >= 2, within_s=5)
        await background.close()
        logins = background.logins
        await asyncio.sleep(0.8)
        assert background.logins == logins


def test_refresh_time_is_clamped_and_jittered() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    for _ in range(200):
        due = refresh_time(now, now + timedelta(seconds=100), 0.75, 500, rng)
        assert timedelta(seconds=74.5) <= due - now <= timedelta(seconds=75.5)
    assert refresh_time(now, now + timedelta(milliseconds=2), 0.0, 0, rng) == now + timedelta(
        milliseconds=1
    )
    assert refresh_time(now, now + timedelta(seconds=1), 1.0, 500, rng) <= now + timedelta(
        seconds=1
    )


async def test_expired_token_on_arrival_is_a_login_error(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(NONCE_PATH).respond(200, json=NONCE)
        mock.post(VERIFY_PATH).respond(
            200, json={"access_token": "t", "expires_at": format_timestamp(datetime.now(UTC))}
        )
        with pytest.raises(LoginError, match="already expired"):
            await auth_for(http, max_retries=0).token()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (409, "conflict"),
        (408, "retryable"),
        (429, "retryable"),
        (502, "retryable"),
        (503, "retryable"),
        (504, "retryable"),
        (500, "retryable"),
        (400, "slow_retry"),
        (403, "slow_retry"),
        (404, "slow_retry"),
    ],
)
def test_registration_status_classes(status: int, outcome: str) -> None:
    from domain_client.errors import error_for_status

    assert classify_failure(error_for_status(status)) == outcome


async def test_registration_backoff_schedule(http: httpx.AsyncClient) -> None:
    config = RegistrationConfig(
        reg_secret="s", capabilities=(CAPABILITY,), version="1.0.0", interval_s=120, max_retry=3
    )
    registrar = Registrar(
        DdsClient(http, BASE), Wallet.from_hex(PRIVATE_KEY), config, rng=random.Random(1)
    )
    delays = [registrar.delay_after("retryable") for _ in range(4)]
    for n, delay in enumerate(delays[:2], start=1):
        assert 0.8 * 2**n <= delay <= 1.2 * 2**n
    assert delays[2] == 120  # n reached REGISTER_MAX_RETRY: cooldown, counter reset
    assert 1.6 <= delays[3] <= 2.4
    assert registrar.delay_after("slow_retry") == 120
    unlimited = Registrar(
        DdsClient(http, BASE),
        Wallet.from_hex(PRIVATE_KEY),
        RegistrationConfig(reg_secret="s", capabilities=(CAPABILITY,), version="1.0.0"),
    )
    assert max(unlimited.delay_after("retryable") for _ in range(10)) <= 60 * 1.2


async def test_bad_nonce_body_is_retryable_and_empty_capabilities_slow(
    http: httpx.AsyncClient,
) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post(NONCE_PATH).respond(200, json={**NONCE, "nonce": ""})
        register = mock.post(REGISTER_PATH).respond(200)
        assert await registrar_for(http).attempt() == "retryable"
        config = RegistrationConfig(reg_secret="s", capabilities=(), version="1.0.0")
        empty = Registrar(DdsClient(http, BASE), Wallet.from_hex(PRIVATE_KEY), config)
        assert await empty.attempt() == "slow_retry"
    assert register.call_count == 0
