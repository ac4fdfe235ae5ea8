"""Request body limit (ASGI middleware): 413 before the body is read, never buffered.

A declared ``Content-Length`` over the limit is answered at once. A body that streams without
one (chunked) is counted as it arrives; the moment it passes the limit the client gets 413 and
the application sees a disconnect, so no more than the limit is ever held in memory.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """Answers 413 to requests whose body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send)
            return
        await _LimitedExchange(self, receive, send).run(scope)

    async def _reject(self, send: Send) -> None:
        detail = {"detail": f"request body larger than {self.max_bytes} bytes"}
        body = json.dumps(detail, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _LimitedExchange:
    """One request: counts body bytes, swaps in a 413 once they exceed the limit."""

    def __init__(self, limit: BodySizeLimit, receive: Receive, send: Send) -> None:
        self._limit = limit
        self._receive = receive
        self._send = send
        self._received = 0
        self._rejected = False
        self._started = False

    async def run(self, scope: Scope) -> None:
        try:
            await self._limit.app(scope, self.receive, self.send)
        except Exception:
            if not self._rejected:
                raise
            # The application tripped over the disconnect we fed it; the 413 is already out.

    async def receive(self) -> Message:
        if self._rejected:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit.max_bytes:
                self._rejected = True
                if not self._started:
                    self._started = True
                    await self._limit._reject(self._send)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self._rejected:
            return  # the 413 has been sent; the application's answer is dropped
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
