"""DDS (protocol §1.4–§1.5): SIWE nonce, wallet registration, SIWE login. No bearer needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from emulator.deps import StateDep, public_url, read_json
from emulator.models import NonceRequest, RegisterWalletRequest, VerifyRequest

router = APIRouter(prefix="/internal/v1", tags=["DDS"])


@router.post("/auth/siwe/request")
async def siwe_request(request: Request, state: StateDep) -> dict[str, Any]:
    """Issue a single-use nonce with the SIWE fields the node must sign over."""
    body, _ = await read_json(request, NonceRequest)
    with state.lock:
        return state.registry.issue_nonce(body.wallet, public_url(request, state)).to_json()


@router.post("/nodes/register-wallet")
async def register_wallet(request: Request, state: StateDep) -> dict[str, Any]:
    """Register (or re-register) a wallet: signed SIWE message + registration secret."""
    body, _ = await read_json(request, RegisterWalletRequest)
    with state.lock:
        node = state.registry.register(body)
    return {"status": "registered", "wallet": node.wallet, "capabilities": node.capabilities}


@router.post("/auth/siwe/verify")
async def siwe_verify(request: Request, state: StateDep) -> dict[str, str]:
    """Log a registered wallet in: `{access_token, access_expires_at}`; 403 if unregistered."""
    body, _ = await read_json(request, VerifyRequest)
    with state.lock:
        return state.registry.login(body)
