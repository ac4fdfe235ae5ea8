"""Fixtures of the domain_client suite: anyio on asyncio, a shared httpx client, and a guard
that fails any test whose sockets reach beyond loopback."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.domain_client.factories import shared_ssl_context

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _require_loopback(address: Any) -> None:
    if not isinstance(address, tuple):
        return  # AF_UNIX paths and the like stay on this machine
    host = str(address[0])
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise RuntimeError(f"test tried to reach a non-loopback address: {host}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _require_loopback(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _require_loopback(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """No test of this package may open a socket to anything but loopback."""
    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", _guarded_connect)
    patch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    yield
    patch.undo()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=shared_ssl_context()) as client:
        yield client
