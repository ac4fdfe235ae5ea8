"""JWT-shaped tokens and domain grants, in-process."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from emulator.clock import Clock
from emulator.errors import EmulatorError
from emulator.grants import DomainTokens, bearer_from_header
from emulator.tokens import TokenError, TokenSigner

URL = "http://127.0.0.1:9"


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_round_trip_and_shape() -> None:
    signer = TokenSigner("k")
    token = signer.issue({"typ": "domain", "exp": 10, "aud": ["x"]})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert signer.decode(token, "domain")["aud"] == ["x"]


@pytest.mark.parametrize(
    ("mangle", "detail"),
    [
        (lambda t: t + ".x", "three dot-separated segments"),
        (lambda t: t[:-2] + "AA", "signature does not verify"),
        (lambda t: _b64({}) + "." + _b64({"typ": "domain"}) + "." + t.split(".")[2], "signature"),
    ],
)
def test_tampering_is_detected(mangle: Callable[[str], str], detail: str) -> None:
    signer = TokenSigner("k")
    token = signer.issue({"typ": "domain", "exp": 10})
    with pytest.raises(TokenError) as caught:
        signer.decode(mangle(token), "domain")
    assert detail in str(caught.value)


def test_kind_and_exp_are_required() -> None:
    signer = TokenSigner("k")
    with pytest.raises(TokenError, match="not a machine token"):
        signer.decode(signer.issue({"typ": "domain", "exp": 1}), "machine")
    with pytest.raises(TokenError, match="no integer exp claim"):
        signer.decode(signer.issue({"typ": "domain"}), "domain")
    with pytest.raises(TokenError, match="signature does not verify"):
        TokenSigner("other").decode(signer.issue({"typ": "domain", "exp": 1}), "domain")


def test_grants_expire_on_the_emulated_clock() -> None:
    clock = Clock()
    grants = DomainTokens(TokenSigner("k"), clock)
    grant = grants.issue("d1", URL, ttl_s=10)
    grants.check(grant.token, "d1", URL)
    assert 0 <= grant.lived_fraction(clock.now()) < 0.2
    clock.advance(11)
    with pytest.raises(EmulatorError) as caught:
        grants.check(grant.token, "d1", URL)
    assert caught.value.status == 401 and caught.value.detail == "domain token expired"


def test_revoked_grants_are_refused() -> None:
    grants = DomainTokens(TokenSigner("k"), Clock())
    grant = grants.issue("d1", URL, ttl_s=10)
    grants.revoke(grant.jti)
    with pytest.raises(EmulatorError, match="superseded"):
        grants.check(grant.token, "d1", URL)


@pytest.mark.parametrize("header", [None, "", "Basic x", "Bearer", "Bearer   "])
def test_bearer_header_parsing_rejects(header: str | None) -> None:
    with pytest.raises(EmulatorError) as caught:
        bearer_from_header(header)
    assert caught.value.status == 401


def test_bearer_header_parsing_accepts_any_scheme_case() -> None:
    assert bearer_from_header("bearer abc") == "abc"
