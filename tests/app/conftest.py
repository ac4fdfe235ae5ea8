"""Fixtures of the node tests: anyio on asyncio, and the DDS/DMS/domain-server emulator.

One emulator (uvicorn on a free loopback port, in a thread) serves the whole session; every
test that asks for ``emulator`` gets it reset to a fresh, empty state, optionally with config
overrides (``start_emulator(lease_ttl=5)``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from emulator import EmulatorConfig, EmulatorServer
from tests.app.domains import EMULATOR_CONFIG

StartEmulator = Callable[..., EmulatorServer]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EMULATOR_CONFIG) as server:
        yield server


@pytest.fixture
def start_emulator(emulator_server: EmulatorServer) -> StartEmulator:
    """Resets the session's emulator with config overrides; returns the server."""

    def start(**overrides: Any) -> EmulatorServer:
        config: EmulatorConfig = replace(EMULATOR_CONFIG, **overrides)
        emulator_server.reset(config)
        return emulator_server

    return start


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    """The emulator, fresh, with the tests' default config."""
    return start_emulator()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client, as the node's services share one."""
    async with httpx.AsyncClient() as client:
        yield client
