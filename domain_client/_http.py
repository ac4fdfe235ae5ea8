"""The one boundary between httpx and domain_client.

Every request of the package goes through :func:`send` or :func:`open_stream`; they map httpx
exceptions to :mod:`domain_client.errors` (chained ``from exc``), cap response sizes, and turn
non-2xx statuses into :class:`~domain_client.errors.ResponseError` (with the ``Retry-After``
header kept for :mod:`domain_client.retry`). ``RetryPolicy``/``retrying`` live in
:mod:`domain_client.retry` and are re-exported here for existing imports.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pydantic

from domain_client.errors import (
    DomainClientError,
    InvalidInputError,
    ProtocolViolation,
    RequestTimeoutError,
    TransportError,
    error_for_status,
)
from domain_client.retry import NO_RETRY, RetryPolicy, retrying

__all__ = [
    "ERROR_BODY_KEEP",
    "NO_RETRY",
    "Reply",
    "RetryPolicy",
    "StreamReply",
    "http_errors",
    "open_stream",
    "parse_json",
    "parse_model",
    "retrying",
    "send",
]

T = TypeVar("T")
M = TypeVar("M", bound=pydantic.BaseModel)

ERROR_BODY_KEEP = 4096
"""Bytes of a non-2xx body kept on the :class:`ResponseError` (for debugging)."""


@contextmanager
def http_errors(what: str) -> Iterator[None]:
    """Map any httpx exception raised inside the block to a domain_client error."""
    try:
        yield
    except httpx.TimeoutException as exc:
        sent = not isinstance(exc, _NOT_SENT)
        raise RequestTimeoutError(f"{what}: {type(exc).__name__}", request_sent=sent) from exc
    except httpx.HTTPError as exc:
        sent = not isinstance(exc, _NOT_SENT)
        raise TransportError(f"{what}: {_describe(exc)}", request_sent=sent) from exc
    except httpx.InvalidURL as exc:
        raise InvalidInputError(f"{what}: invalid URL: {exc}") from exc
    except httpx.StreamError as exc:
        raise ProtocolViolation(f"{what}: {_describe(exc)}") from exc


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""httpx failures that happen before any byte of the request reached the server."""


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Reply:
    """A fully read HTTP response."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self, what: str) -> Any:
        return parse_json(self.body, what)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeouts: httpx.Timeout,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
    expect_2xx: bool = True,
) -> Reply:
    """Send one request and read its body (at most ``max_bytes``, else ProtocolViolation).

    With ``expect_2xx`` a non-2xx status raises the matching :class:`ResponseError`.
    """
    async with open_stream(
        http,
        method,
        url,
        what=what,
        timeouts=timeouts,
        headers=headers,
        params=params,
        content=content,
        expect_2xx=expect_2xx,
    ) as stream:
        body = await stream.read(max_bytes)
        return Reply(stream.status, stream.headers, body)


class StreamReply:
    """An open streaming response whose body reads map httpx errors."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        self._response = response
        self.what = what

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in network-sized chunks."""
        iterator = self._response.aiter_bytes().__aiter__()
        while True:
            with http_errors(self.what):
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk

    async def read(self, max_bytes: int) -> bytes:
        """The whole body; more than ``max_bytes`` is a ProtocolViolation."""
        parts: list[bytes] = []
        total = 0
        async for chunk in self.chunks():
            total += len(chunk)
            if total > max_bytes:
                raise ProtocolViolation(f"{self.what}: response body exceeds {max_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeouts: httpx.Timeout,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
    expect_2xx: bool = True,
) -> AsyncIterator[StreamReply]:
    """Open a streaming request; a non-2xx status raises (after reading a bounded error body)."""
    with http_errors(what):
        request = http.build_request(
            method, url, headers=headers, params=params, content=content, timeout=timeouts
        )
        response = await http.send(request, stream=True)
    try:
        reply = StreamReply(response, what)
        if expect_2xx and not 200 <= response.status_code <= 299:
            raise error_for_status(
                response.status_code,
                await _error_body(reply),
                retry_after=response.headers.get("retry-after"),
            )
        yield reply
    finally:
        with http_errors(what):
            await response.aclose()


async def _error_body(reply: StreamReply) -> bytes:
    kept = bytearray()
    try:
        async for chunk in reply.chunks():
            kept += chunk[: ERROR_BODY_KEEP - len(kept)]
            if len(kept) >= ERROR_BODY_KEEP:
                break
    except DomainClientError:
        pass  # the status is the error; a broken error body adds nothing
    return bytes(kept)


def parse_json(body: bytes, what: str) -> Any:
    """Decode a JSON body; failures become ProtocolViolation."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"{what}: response is not valid JSON ({exc})") from exc


def parse_model(model: type[M], data: Any, what: str) -> M:
    """Validate decoded JSON against a wire model; failures become ProtocolViolation."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ProtocolViolation(f"{what}: unexpected response shape ({problems})") from exc
