"""Domain-scoped access tokens: issued with leases (and by the admin API), checked by the
domain server on every request except `/api/v1/info` (protocol §2.1).

A token is good for one domain and one domain-server URL until its `exp`. With
`revoke_superseded_tokens` the emulator additionally refuses tokens that a heartbeat rotated
away or whose lease ended.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.clock import Clock, from_unix
from emulator.errors import unauthorized
from emulator.tokens import TokenError, TokenSigner, new_token_id


@dataclass(frozen=True)
class DomainGrant:
    """One issued domain token and what it allows."""

    token: str
    jti: str
    domain_id: str
    server_url: str
    issued_at: datetime
    expires_at: datetime

    def lived_fraction(self, now: datetime) -> float:
        """How much of its lifetime has passed (≥ 1 once expired)."""
        total = (self.expires_at - self.issued_at).total_seconds()
        return (now - self.issued_at).total_seconds() / total if total > 0 else 1.0


class DomainTokens:
    """Issues and checks domain tokens; remembers revoked token ids."""

    def __init__(self, signer: TokenSigner, clock: Clock) -> None:
        self._signer = signer
        self._clock = clock
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def issue(
        self,
        domain_id: str,
        server_url: str,
        ttl_s: float,
        subject: str | None = None,
        task_id: str | None = None,
    ) -> DomainGrant:
        """A token `{iss: dds, domain_id, aud: [server_url], exp}` valid for ⌈ttl_s⌉ seconds."""
        now = self._clock.now()
        exp = math.ceil(now.timestamp() + ttl_s)
        jti = new_token_id()
        claims = {
            "typ": "domain",
            "iss": "dds",
            "sub": subject,
            "domain_id": domain_id,
            "aud": [server_url],
            "exp": exp,
            "iat": int(now.timestamp()),
            "jti": jti,
            "task_id": task_id,
        }
        token = self._signer.issue(claims)
        return DomainGrant(token, jti, domain_id, server_url, now, from_unix(exp))

    def revoke(self, jti: str) -> None:
        """Make a token unusable before its expiry."""
        with self._lock:
            self._revoked.add(jti)

    def check(self, bearer: str, domain_id: str, server_url: str) -> None:
        """Raise 401 unless `bearer` is a live token for `domain_id` at `server_url`."""
        try:
            claims = self._signer.decode(bearer, "domain")
        except TokenError as exc:
            raise unauthorized(f"invalid domain token: {exc}") from exc
        self._check_claims(claims, domain_id, server_url)

    def _check_claims(self, claims: dict[str, Any], domain_id: str, server_url: str) -> None:
        if self._clock.timestamp() >= claims["exp"]:
            raise unauthorized("domain token expired")
        with self._lock:
            if claims.get("jti") in self._revoked:
                raise unauthorized("domain token was superseded or its lease ended")
        if claims.get("domain_id") != domain_id:
            raise unauthorized(f"domain token is not valid for domain {domain_id}")
        audience = claims.get("aud")
        if not isinstance(audience, list) or server_url not in audience:
            raise unauthorized(f"domain token audience does not include {server_url}")


def bearer_from_header(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; 401 if absent or malformed."""
    if not authorization:
        raise unauthorized("missing Authorization: Bearer header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()
