"""Fixtures of the emulator suite: the loopback guard and a plain httpx client on the emulator
(the ``emulator`` / ``start_emulator`` fixtures come from :mod:`tests.support.emulator`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulator import EmulatorServer
from tests.support.loopback import loopback_only


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """No test of this package may open a socket to anything but loopback."""
    with loopback_only():
        yield


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A client whose base URL is the emulator's."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client
