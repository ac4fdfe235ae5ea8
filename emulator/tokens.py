"""JWT-shaped tokens (HS256) the emulator issues and checks.

Two kinds, told apart by the `typ` claim:
- `machine`: the DDS SIWE access token, the DMS bearer. Claims `iss="dds"`, `sub=<wallet>`,
  `aud=["dms"]`, `exp`, `iat`, `jti`.
- `domain`: the lease's domain-server bearer (protocol §2.1). Claims `iss="dds"`,
  `domain_id`, `aud=[<domain server url>]`, `exp` (unix seconds), plus `iat`, `jti`, `sub`,
  `task_id`.

Clients never verify the signature (the real key belongs to DDS); the emulator does, so a token
that was edited by hand is refused like any other invalid token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any, Literal

TokenKind = Literal["machine", "domain"]
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(ValueError):
    """A bearer that is not a well-formed, correctly signed token of the expected kind."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise TokenError("token segment is not base64url") from exc


class TokenSigner:
    """Signs and verifies HS256 JWTs with one secret."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or secrets.token_hex(32)).encode("utf-8")

    def issue(self, claims: dict[str, Any]) -> str:
        """`<header>.<payload>.<signature>`, each base64url without padding."""
        head = _b64url(json.dumps(_HEADER, separators=(",", ":")).encode())
        body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{head}.{body}.{self._sign(f'{head}.{body}')}"

    def decode(self, token: str, kind: TokenKind) -> dict[str, Any]:
        """Claims of a correctly signed token whose `typ` is `kind` (expiry is not checked here)."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("token is not a JWT (expected three dot-separated segments)")
        head, body, signature = parts
        if not hmac.compare_digest(self._sign(f"{head}.{body}"), signature):
            raise TokenError("token signature does not verify")
        claims = _json_object(_b64url_decode(body))
        if claims.get("typ") != kind:
            raise TokenError(f"token is not a {kind} token")
        if not isinstance(claims.get("exp"), int):
            raise TokenError("token has no integer exp claim")
        return claims

    def _sign(self, signing_input: str) -> str:
        digest = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return _b64url(digest)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenError("token payload is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenError("token payload is not a JSON object")
    return value


def new_token_id() -> str:
    """A fresh `jti` claim."""
    return secrets.token_hex(8)
