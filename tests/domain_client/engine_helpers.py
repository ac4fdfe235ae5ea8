"""Shared set-up of the engine tests: an engine wired to respx mocks, and lease scripting."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from domain_client import (
    AccessTokenSource,
    DmsClient,
    EngineConfig,
    Handler,
    Registrar,
    RetryPolicy,
    StaticTokenSource,
    TaskEngine,
)
from tests.domain_client.factories import BASE, ts


def engine_for(
    http: httpx.AsyncClient,
    handlers: Mapping[str, Handler],
    *,
    auth: AccessTokenSource | None = None,
    registrar: Registrar | None = None,
    **config: Any,
) -> TaskEngine:
    """An engine on the mocked BASE with fast polling and no domain retries."""
    settings: dict[str, Any] = {
        "client_id": "node-client",
        "poll_backoff_ms_min": 10,
        "poll_backoff_ms_max": 20,
        "domain_retry": RetryPolicy(attempts=1),
        "cancel_grace_s": 1.0,
        **config,
    }
    dms = DmsClient(http, BASE, auth or StaticTokenSource("node-abc"))
    return TaskEngine(dms, http, handlers, EngineConfig(**settings), registrar=registrar)


def heartbeat_echo(lease: dict[str, Any], **changes: Any) -> Callable[..., httpx.Response]:
    """A heartbeat side effect answering the lease envelope with fresh expiries (+ changes)."""

    def respond(request: httpx.Request | None = None) -> httpx.Response:
        body = {**lease, "lease_expires_at": ts(60), "access_token_expires_at": ts(60), **changes}
        return httpx.Response(200, json=body)

    return respond


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
