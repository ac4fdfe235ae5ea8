"""Fixtures: the emulator on a free loopback port (uvicorn in a thread) and a plain httpx client.

One server per test module is started; every test gets a fresh, empty state on it (optionally
with config overrides), which costs microseconds instead of a uvicorn start and stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from emulator import EmulatorConfig, EmulatorServer

StartEmulator = Callable[..., EmulatorServer]
QUICK = EmulatorConfig(token_secret="test-secret")


@pytest.fixture(scope="module")
def module_server() -> Iterator[EmulatorServer]:
    """The module's uvicorn server."""
    with EmulatorServer(QUICK) as server:
        yield server


@pytest.fixture
def start_emulator(module_server: EmulatorServer) -> StartEmulator:
    """Reset the module's server to a fresh state with config overrides
    (`start_emulator(lease_ttl=2)`); returns the server."""

    def start(**overrides: Any) -> EmulatorServer:
        module_server.reset(replace(QUICK, **overrides))
        return module_server

    return start


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    """The emulator, fresh, with the default config."""
    return start_emulator()


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A client whose base URL is the emulator's."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client
