"""Async client of the DDS calls a compute node makes (protocol §1.4, §1.5).

``{DDS_BASE_URL}/internal/v1/…`` (trailing ``/`` of the base removed). None of these calls
carries auth: they are signature-based. Request bodies hold the registration secret and
signatures, so they are never logged and never part of an error message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from domain_client._http import parse_model, send
from domain_client.errors import NonceError, ProtocolViolation
from domain_client.models import SiweNonce, SiweToken
from domain_client.siwe import Wallet, build_siwe_message

__all__ = ["DDS_MAX_RESPONSE_BYTES", "DdsClient", "Wallet", "build_siwe_message"]

DDS_MAX_RESPONSE_BYTES = 2 * 1024 * 1024


class DdsClient:
    """Nonce, wallet registration and SIWE verify.

    Args:
        http: the shared client.
        base_url: ``DDS_BASE_URL``.
        timeout_s: per-call timeout, seconds (``REQUEST_TIMEOUT_SECS``, at least 1).
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(max(1.0, timeout_s))

    def _url(self, path: str) -> str:
        return f"{self.base_url}/internal/v1/{path}"

    async def _post(self, path: str, body: dict[str, Any], what: str) -> Any:
        reply = await send(
            self._http,
            "POST",
            self._url(path),
            what=f"DDS {what}",
            timeouts=self._timeout,
            max_bytes=DDS_MAX_RESPONSE_BYTES,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        return reply.body

    async def request_nonce(self, address: str) -> SiweNonce:
        """``POST /internal/v1/auth/siwe/request`` ``{"wallet": <address>}``.

        Raises:
            NonceError: the body is not JSON or lacks a field needed for the message.
            ResponseError / TransportError: as for any request.
        """
        body = await self._post("auth/siwe/request", {"wallet": address}, "nonce")
        try:
            nonce = parse_model(SiweNonce, json.loads(body), "DDS nonce")
        except (ValueError, ProtocolViolation) as exc:
            raise NonceError(f"SIWE nonce response does not parse: {type(exc).__name__}") from exc
        build_siwe_message(nonce, address)  # raises NonceError when a field is missing
        return nonce

    async def register_wallet(
        self,
        *,
        message: str,
        signature: str,
        reg_secret: str,
        capabilities: Sequence[str],
        version: str,
    ) -> None:
        """``POST /internal/v1/nodes/register-wallet``; any 2xx means registered."""
        body = {
            "message": message,
            "signature": signature,
            "registration_credentials": reg_secret,
            "capabilities": list(capabilities),
            "version": version,
        }
        await self._post("nodes/register-wallet", body, "register-wallet")

    async def verify(self, *, address: str, message: str, signature: str) -> SiweToken:
        """``POST /internal/v1/auth/siwe/verify`` → access token and its expiry.

        Raises:
            ProtocolViolation: no non-empty ``access_token`` or no expiry in the answer.
        """
        body = {"address": address, "message": message, "signature": signature}
        raw = await self._post("auth/siwe/verify", body, "siwe verify")
        try:
            token = parse_model(SiweToken, json.loads(raw), "DDS siwe verify")
        except ValueError as exc:
            raise ProtocolViolation("DDS siwe verify: response is not valid JSON") from exc
        if not token.access_token:
            raise ProtocolViolation("DDS siwe verify: empty access_token")
        return token

    async def login(self, wallet: Wallet) -> SiweToken:
        """One SIWE login: nonce, sign, verify (protocol §1.5 steps 1–3)."""
        nonce = await self.request_nonce(wallet.address)
        message = build_siwe_message(nonce, wallet.address)
        return await self.verify(
            address=wallet.address, message=message, signature=wallet.sign_personal(message)
        )
