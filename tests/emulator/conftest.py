"""Fixtures of the emulator suite: the loopback guard and a plain httpx client on the emulator
(the ``emulator`` / ``start_emulator`` fixtures come from :mod:`tests.support.emulator`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulator import EmulatorServer

# No test of this package may open a socket to anything but loopback (autouse).
from tests.support.loopback import loopback_only_session as loopback_only_session


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A client whose base URL is the emulator's."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client
