"""Async client of the DMS task queue (protocol §1.6–1.11).

Paths are appended to the base URL (``{DMS_BASE_URL}/tasks…``, one trailing ``/`` stripped).
Every call carries the DDS SIWE token; a 401 invalidates it, fetches a fresh one and replays the
request once. None of these calls is retried otherwise: leasing and receipts are not idempotent,
and a failed heartbeat means the lease is lost (§5 #11).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from domain_client._http import Reply, parse_model, send
from domain_client.errors import (
    DomainClientError,
    InvalidInputError,
    LeaseLost,
    ProtocolViolation,
    error_for_status,
)
from domain_client.models import CompleteBody, FailBody, Lease, LeaseUpdate
from domain_client.tokens import AccessTokenSource

__all__ = ["DMS_MAX_RESPONSE_BYTES", "MAX_PROGRESS_BYTES", "DmsClient", "DmsPaths"]

logger = logging.getLogger(__name__)

DMS_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_PROGRESS_BYTES = 64 * 1024


class DmsPaths:
    """URLs of the DMS endpoints: segments appended to the base URL's path (§1.1)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url[:-1] if base_url.endswith("/") else base_url

    def tasks(self) -> str:
        return f"{self.base}/tasks"

    def task(self, task_id: str, action: str) -> str:
        return f"{self.base}/tasks/{quote(task_id, safe='')}/{action}"


class DmsClient:
    """Lease, heartbeat, complete and fail.

    Args:
        http: the shared client.
        base_url: ``DMS_BASE_URL`` (``/v1`` is part of it).
        auth: source of the DDS bearer (``DdsAuth`` in production).
        timeout_s: ``REQUEST_TIMEOUT_SECS`` for every DMS call, seconds.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: AccessTokenSource,
        *,
        timeout_s: float = 60.0,
    ) -> None:
        self._http = http
        self.paths = DmsPaths(base_url)
        self._auth = auth
        self._timeout = httpx.Timeout(timeout_s)

    async def lease(self, capability: str | None = None) -> Lease | None:
        """``GET /tasks``: a lease, or None for "no work" (204) and "busy" (409).

        ``capability`` adds the [SDK] ``?capability=`` query and checks the answer; the node
        sends none (§5 #2).
        """
        params = {"capability": capability} if capability is not None else None
        reply = await self._call("GET", self.paths.tasks(), "lease", params=params)
        if reply.status in (204, 409):
            return None
        _raise_for_status(reply)
        lease = parse_model(Lease, reply.json("lease"), "lease")
        if capability is not None and lease.task.capability != capability:
            raise ProtocolViolation(
                f"claim capability mismatch: asked {capability}, got {lease.task.capability}"
            )
        return lease

    async def heartbeat(
        self, task_id: str, progress: Any, events: list[Mapping[str, Any]]
    ) -> LeaseUpdate:
        """``POST /tasks/{id}/heartbeat``; any failure other than a replayed 401 is LeaseLost.

        Raises:
            InvalidInputError: ``progress`` serialises to more than 64 KiB (nothing sent).
            LeaseLost: non-2xx, transport error, timeout or a body that is not a JSON object.
        """
        body = {"progress": progress, "events": list(events)}
        encoded_progress = json.dumps(progress, separators=(",", ":")).encode()
        if len(encoded_progress) > MAX_PROGRESS_BYTES:
            raise InvalidInputError(
                f"progress is {len(encoded_progress)} bytes; the limit is {MAX_PROGRESS_BYTES}"
            )
        try:
            reply = await self._call(
                "POST", self.paths.task(task_id, "heartbeat"), "heartbeat", body=body
            )
            _raise_for_status(reply)
            decoded = reply.json("heartbeat")
            if not isinstance(decoded, dict):
                raise ProtocolViolation("heartbeat: response is not a JSON object")
            return parse_model(LeaseUpdate, decoded, "heartbeat")
        except DomainClientError as exc:
            raise LeaseLost(f"lease lost: heartbeat failed: {exc}") from exc

    async def complete(self, task_id: str, body: CompleteBody) -> None:
        """``POST /tasks/{id}/complete``; any 2xx is accepted."""
        reply = await self._call(
            "POST", self.paths.task(task_id, "complete"), "complete", body=body.wire()
        )
        _raise_for_status(reply)

    async def fail(self, task_id: str, body: FailBody) -> None:
        """``POST /tasks/{id}/fail``; any 2xx is accepted."""
        reply = await self._call("POST", self.paths.task(task_id, "fail"), "fail", body=body.wire())
        _raise_for_status(reply)

    async def _call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send with the DDS bearer; on 401 invalidate it and replay once with a fresh one."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        token = await self._auth.token()
        reply = await self._send(method, url, what, content, params, token)
        if reply.status != 401:
            return reply
        logger.info("DMS %s answered 401; refreshing the DDS token and replaying once", what)
        self._auth.invalidate(token)
        return await self._send(method, url, what, content, params, await self._auth.token())

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        token: str,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return await send(
            self._http,
            method,
            url,
            what=f"DMS {what}",
            timeouts=self._timeout,
            max_bytes=DMS_MAX_RESPONSE_BYTES,
            headers=headers,
            params=params,
            content=content,
            expect_2xx=False,
        )


def _raise_for_status(reply: Reply) -> None:
    if not 200 <= reply.status <= 299:
        raise error_for_status(reply.status, reply.body[:4096])
