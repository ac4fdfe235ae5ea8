"""The push jobs' HTTP client: each connection checks the address it actually connects to.

:func:`app.targets.check_target` resolves a pushed URL's host when the job is queued and again
when it starts, but a connection resolves the name once more, and a DNS answer that changed in
between (DNS rebinding) would reach an address the check refused, with the job's domain token.
So push jobs' requests (their domain client and their ``progress_url`` relay) go through
:class:`PinnedTransport`, whose network backend (:class:`PinnedBackend`) resolves the host
itself, applies the same rule (every address public, unless the host matches
``SPLATTER_ALLOWED_DOMAIN_HOSTS``) and connects to the very address it checked. TLS still
verifies the certificate against the host name (httpcore passes it as SNI).

A refused connection is an ``httpx.ConnectError`` whose message names the host, the address and
the allow-list. The transport is httpx's default one (same pool limits, TLS and error types)
built over a public httpcore pool with that backend. When the environment names an HTTP proxy
(``HTTPS_PROXY``, ...), the proxy resolves the names and push jobs keep the proxied client:
:func:`push_client` says so in the log.
"""

from __future__ import annotations

import logging
import typing
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpcore
import httpx

from app.targets import AllowedHosts, ForbiddenTargetError, Resolver, public_addresses
from app.targets import system_resolver as _system_resolver

__all__ = ["PinnedBackend", "PinnedTransport", "push_client"]

log = logging.getLogger(__name__)

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: httpcore's exceptions and the httpx ones they become, most specific first (as httpx maps).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the push door's rules allow, and to exactly those.

    Args:
        allowed: ``SPLATTER_ALLOWED_DOMAIN_HOSTS`` (such hosts are connected to as they are).
        resolve: name resolution (tests inject one).
        backend: the backend that opens the sockets (httpcore's AnyIO one by default).
    """

    def __init__(
        self,
        allowed: AllowedHosts,
        resolve: Resolver = _system_resolver,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = allowed
        self._resolve = resolve
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolves ``host``, refuses a non-public address (``httpcore.ConnectError``), then
        connects to the checked addresses in order until one answers."""
        if self._allowed.allows(host, port):
            targets = [host]
        else:
            try:
                checked = await public_addresses("connection to", host, port, self._resolve)
            except ForbiddenTargetError as exc:
                log.warning("refused a push job's connection", extra={"error": str(exc)})
                raise httpcore.ConnectError(f"{exc} (checked when connecting)") from exc
            targets = [str(address) for address in checked]
        failure: httpcore.ConnectError | None = None
        for address in targets:
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("push jobs connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_errors():
                await close()


class PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport (pool limits, TLS) over a :class:`PinnedBackend`."""

    def __init__(self, backend: PinnedBackend, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def push_client(
    allowed: AllowedHosts,
    *,
    resolve: Resolver = _system_resolver,
    proxies: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """The HTTP client of push jobs: 10 s timeouts, no redirects, connections pinned to
    checked addresses; with a proxy in the environment (``proxies``: ``urllib``'s view of it
    by default), a plain client through that proxy."""
    found = urllib.request.getproxies() if proxies is None else proxies
    if any(scheme in found for scheme in ("http", "https", "all")):
        log.warning(
            "push jobs connect through the environment's HTTP proxy: the node cannot check the "
            "address each connection reaches (the proxy resolves the names)"
        )
        return httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    transport = PinnedTransport(PinnedBackend(allowed, resolve))
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), follow_redirects=False, transport=transport
    )
