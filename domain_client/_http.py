"""The one boundary between httpx and domain_client.

Every request of the package goes through :func:`send` or :func:`open_stream`; they map httpx
exceptions to :mod:`domain_client.errors` (chained ``from exc``), cap response sizes, and turn
non-2xx statuses into :class:`~domain_client.errors.ResponseError`. :func:`retrying` wraps
idempotent calls with bounded exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pydantic

from domain_client.errors import (
    DomainClientError,
    InvalidInputError,
    ProtocolViolation,
    RequestTimeoutError,
    ResponseError,
    TransportError,
    error_for_status,
)

__all__ = [
    "ERROR_BODY_KEEP",
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
        raise RequestTimeoutError(f"{what}: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise TransportError(f"{what}: {_describe(exc)}") from exc
    except httpx.InvalidURL as exc:
        raise InvalidInputError(f"{what}: invalid URL: {exc}") from exc
    except httpx.StreamError as exc:
        raise ProtocolViolation(f"{what}: {_describe(exc)}") from exc


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
            raise error_for_status(response.status_code, await _error_body(reply))
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


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for idempotent requests: bounded exponential backoff with jitter.

    Attempt ``k`` (0-based) that failed with a retryable error waits
    ``uniform(d/2, d)`` seconds with ``d = min(max_delay_s, base_delay_s * 2**k)``.

    Attributes:
        attempts: total tries, including the first (1 = no retry).
        base_delay_s: delay scale of the first retry, seconds.
        max_delay_s: upper bound of any single delay, seconds.
        statuses: HTTP statuses worth retrying; transport errors are always retried.
    """

    attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    statuses: frozenset[int] = field(default=frozenset({408, 429, 500, 502, 503, 504}))

    def delay_s(self, retry_index: int, rng: random.Random) -> float:
        cap = min(self.max_delay_s, self.base_delay_s * 2**retry_index)
        return rng.uniform(cap / 2, cap)

    def retryable(self, exc: DomainClientError) -> bool:
        if isinstance(exc, TransportError):
            return True
        return isinstance(exc, ResponseError) and exc.status in self.statuses


NO_RETRY = RetryPolicy(attempts=1)


async def retrying(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``operation`` up to ``policy.attempts`` times while it fails retryably."""
    rng = rng or random.Random()
    for retry_index in range(policy.attempts):
        try:
            return await operation()
        except DomainClientError as exc:
            last_try = retry_index + 1 >= policy.attempts
            if last_try or not policy.retryable(exc):
                raise
        await sleep(policy.delay_s(retry_index, rng))
    raise AssertionError("unreachable: the loop returns or raises")
