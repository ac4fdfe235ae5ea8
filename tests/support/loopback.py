"""A guard that makes any socket connection beyond loopback fail the test at once."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["loopback_only", "loopback_only_session"]

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


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While open, ``socket.connect`` / ``connect_ex`` to a non-loopback address raise."""
    patch = pytest.MonkeyPatch()
    patch.setattr(socket.socket, "connect", _guarded_connect)
    patch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    try:
        yield
    finally:
        patch.undo()


@pytest.fixture(autouse=True, scope="session")
def loopback_only_session() -> Iterator[None]:
    """:func:`loopback_only` for every test below a conftest that imports this fixture."""
    with loopback_only():
        yield
