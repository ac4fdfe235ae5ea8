"""A reverse proxy in front of the emulator that can take the domain server down.

The node talks to the proxy as if it were DDS, DMS and the domain server; the proxy forwards
everything to the emulator until ``down_when`` matches a domain-server request, and from that
request on answers every domain-server request ``503`` (DDS and DMS stay up). That is an outage
at a chosen moment of a run, without touching the node.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class DomainOutageProxy:
    """Forwards to ``target`` (``http://127.0.0.1:<port>``, set once the emulator listens)
    until the outage starts."""

    def __init__(self, down_when: Callable[[Request], bool], target: str = "") -> None:
        self.target = target
        self.down_when = down_when
        self.down = False
        self.refused: list[str] = []
        self.app = Starlette(
            routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    async def _forward(self, request: Request) -> Response:
        is_domain = request.url.path.startswith("/api/")
        if is_domain and (self.down or self.down_when(request)):
            self.down = True
            self.refused.append(f"{request.method} {request.url.path}?{request.url.query}")
            return Response(b"domain server unavailable", status_code=503)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        query = f"?{request.url.query}" if request.url.query else ""
        async with httpx.AsyncClient(timeout=60) as client:
            upstream = await client.request(
                request.method,
                f"{self.target.rstrip('/')}{request.url.path}{query}",
                headers=headers,
                content=await request.body(),
            )
        reply = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
        reply.pop("content-encoding", None)
        return Response(upstream.content, status_code=upstream.status_code, headers=reply)
