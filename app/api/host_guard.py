"""DNS-rebinding guard (ASGI middleware): on a loopback bind, only loopback ``Host`` names.

A node bound to 127.0.0.1 without ``SPLATTER_API_TOKEN`` trusts whoever can reach the port. A
web page the operator visits can rebind its own name to 127.0.0.1 and make the browser call the
node; the browser then still sends the attacker's name in ``Host``. So while the node listens on
a loopback address, a request whose ``Host`` is not ``localhost``, a ``127.0.0.0/8`` address or
``[::1]`` (any port) is answered ``421 Misdirected Request`` before any route runs. A request
without ``Host`` (HTTP/1.0 tools; browsers always send one) passes.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.settings import is_loopback_host

__all__ = ["LoopbackHostGuard", "host_name"]


def host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` → ``::1``, ``a:80`` → ``a``)."""
    text = header.strip()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


class LoopbackHostGuard:
    """Answers 421 to requests whose ``Host`` is not a loopback name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is None or is_loopback_host(host_name(host)):
            await self.app(scope, receive, send)
            return
        detail = (
            f"misdirected request: Host {host!r} is not a loopback name and this node listens "
            "on a loopback address (DNS rebinding guard)"
        )
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 421, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
