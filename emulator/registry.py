"""The emulated DDS: SIWE nonces, wallet registration, SIWE login → machine access tokens.

Protocol §1.3–§1.5. A nonce is bound to the wallet that asked for it, expires after
`nonce_ttl`, and is used up by the first register/verify call that presents it (whatever that
call's outcome), so a signed message can never be replayed. The machine token is the bearer DMS
accepts; it names the wallet and stops working when the wallet is deregistered.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import Clock, from_unix, rfc3339, rfc3339_seconds
from emulator.config import EmulatorConfig
from emulator.errors import bad_request, forbidden, unauthorized
from emulator.models import RegisterWalletRequest, VerifyRequest
from emulator.rules import capabilities_violation, is_semver
from emulator.siwe import (
    SiweError,
    SiweMessage,
    is_address,
    parse_message,
    recover_signer,
)
from emulator.tokens import TokenError, TokenSigner, new_token_id

SIWE_VERSION = "1"


@dataclass(frozen=True)
class IssuedNonce:
    """A nonce and the exact SIWE fields handed out with it."""

    nonce: str
    wallet: str
    domain: str
    uri: str
    chain_id: int
    issued_at: str
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The nonce response body of §1.4(a)."""
        return {
            "nonce": self.nonce,
            "domain": self.domain,
            "uri": self.uri,
            "version": SIWE_VERSION,
            "chainId": self.chain_id,
            "issuedAt": self.issued_at,
        }


@dataclass
class NodeRecord:
    """A registered wallet: what it advertised and when."""

    wallet: str
    capabilities: list[str]
    version: str
    registered_at: str
    registrations: int = 1
    logins: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Admin view."""
        return {
            "wallet": self.wallet,
            "capabilities": list(self.capabilities),
            "version": self.version,
            "registered_at": self.registered_at,
            "registrations": self.registrations,
            "logins": self.logins,
        }


class NodeRegistry:
    """Nonces, registered nodes and machine tokens."""

    def __init__(self, config: EmulatorConfig, clock: Clock, signer: TokenSigner) -> None:
        self._config = config
        self._clock = clock
        self._signer = signer
        self._nonces: dict[str, IssuedNonce] = {}
        self.nodes: dict[str, NodeRecord] = {}

    # ------------------------------------------------------------ nonce

    def issue_nonce(self, wallet: str, public_url: str) -> IssuedNonce:
        """A fresh single-use nonce for `wallet` (400 if it is not an address)."""
        if not is_address(wallet):
            raise bad_request("wallet must be 0x followed by 40 hex digits")
        now = self._clock.now()
        issued = IssuedNonce(
            nonce=secrets.token_hex(16),
            wallet=wallet.lower(),
            domain=self._config.siwe_domain or public_url.split("://", 1)[-1],
            uri=public_url,
            chain_id=self._config.chain_id,
            issued_at=rfc3339_seconds(now),
            expires_at=now + timedelta(seconds=self._config.nonce_ttl),
        )
        self._nonces[issued.nonce] = issued
        return issued

    # ------------------------------------------------------------ registration

    def register(self, body: RegisterWalletRequest) -> NodeRecord:
        """Verify the signed SIWE message and the credentials, then record the node."""
        violation = capabilities_violation(body.capabilities)
        if violation:
            raise bad_request(violation)
        if not is_semver(body.version):
            raise bad_request(f"version must be semver (e.g. 1.2.3), got {body.version!r}")
        wallet = self._verify(body.message, body.signature).address
        secret = self._config.registration_secret
        if not secrets.compare_digest(body.registration_credentials.encode(), secret.encode()):
            raise unauthorized("registration_credentials do not match the registration secret")
        return self._record_node(wallet, body.capabilities, body.version)

    def _record_node(self, wallet: str, capabilities: list[str], version: str) -> NodeRecord:
        now = rfc3339(self._clock.now())
        node = self.nodes.get(wallet)
        if node is None:
            node = NodeRecord(wallet, list(capabilities), version, now)
            self.nodes[wallet] = node
        else:
            node.capabilities, node.version = list(capabilities), version
            node.registered_at, node.registrations = now, node.registrations + 1
        node.history.append({"at": now, "capabilities": list(capabilities), "version": version})
        return node

    def register_directly(self, wallet: str, capabilities: list[str], version: str) -> NodeRecord:
        """Python API: record a node without the SIWE round trip (tests of later stages)."""
        if not is_address(wallet):
            raise bad_request("wallet must be 0x followed by 40 hex digits")
        return self._record_node(wallet.lower(), capabilities, version)

    def deregister(self, wallet: str) -> bool:
        """Forget a node: its machine tokens stop working and SIWE verify answers 403."""
        return self.nodes.pop(wallet.lower(), None) is not None

    # ------------------------------------------------------------ login

    def login(self, body: VerifyRequest) -> dict[str, str]:
        """`{access_token, access_expires_at}` for a registered wallet's signed message."""
        if not is_address(body.address):
            raise bad_request("address must be 0x followed by 40 hex digits")
        message = self._verify(body.message, body.signature)
        if message.address != body.address.lower():
            raise unauthorized("address does not match the address in the SIWE message")
        node = self.nodes.get(message.address)
        if node is None:
            raise forbidden(f"wallet {message.address} is not registered")
        node.logins += 1
        return self.issue_access_token(message.address)

    def issue_access_token(self, wallet: str) -> dict[str, str]:
        """A machine token for `wallet` (also the Python API for tests that skip SIWE)."""
        now = self._clock.now()
        exp = math.ceil(now.timestamp() + self._config.access_token_ttl)
        claims = {
            "typ": "machine",
            "iss": "dds",
            "sub": wallet.lower(),
            "aud": ["dms"],
            "exp": exp,
            "iat": int(now.timestamp()),
            "jti": new_token_id(),
        }
        expires = rfc3339(from_unix(exp))
        return {"access_token": self._signer.issue(claims), "access_expires_at": expires}

    def authenticate(self, bearer: str) -> NodeRecord:
        """The registered node a DMS bearer belongs to; 401 otherwise."""
        try:
            claims = self._signer.decode(bearer, "machine")
        except TokenError as exc:
            raise unauthorized(f"invalid access token: {exc}") from exc
        if self._clock.timestamp() >= claims["exp"]:
            raise unauthorized("access token expired")
        node = self.nodes.get(str(claims.get("sub")))
        if node is None:
            raise unauthorized("access token names a wallet that is not registered")
        return node

    # ------------------------------------------------------------ SIWE checks

    def _verify(self, text: str, signature: str) -> SiweMessage:
        """Parse the message, use up its nonce, check every field and the signature."""
        try:
            message = parse_message(text)
        except SiweError as exc:
            raise bad_request(str(exc)) from exc
        issued = self._nonces.pop(message.nonce, None)
        if issued is None:
            raise unauthorized("SIWE nonce is unknown or was already used")
        self._check_fields(message, issued)
        try:
            signer = recover_signer(text, signature)
        except SiweError as exc:
            raise unauthorized(str(exc)) from exc
        if signer != message.address:
            raise unauthorized(f"signature was made by {signer}, not by {message.address}")
        return message

    def _check_fields(self, message: SiweMessage, issued: IssuedNonce) -> None:
        if self._clock.now() >= issued.expires_at:
            raise unauthorized("SIWE nonce expired")
        expected = {
            "address": (message.address, issued.wallet),
            "domain": (message.domain, issued.domain),
            "URI": (message.uri, issued.uri),
            "Version": (message.version, SIWE_VERSION),
            "Chain ID": (str(message.chain_id), str(issued.chain_id)),
            "Issued At": (message.issued_at, issued.issued_at),
        }
        for name, (got, wanted) in expected.items():
            if got != wanted:
                raise unauthorized(f"SIWE {name} {got!r} does not match the issued {wanted!r}")
