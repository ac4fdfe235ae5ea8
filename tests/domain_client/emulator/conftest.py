"""Fixtures: the emulator on a free loopback port (uvicorn in a thread) and a plain httpx client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from domain_client.emulator import EmulatorConfig, EmulatorServer

StartEmulator = Callable[..., EmulatorServer]
QUICK = EmulatorConfig(token_secret="test-secret")


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators with config overrides (`start_emulator(lease_ttl=2)`); all stop after."""
    servers: list[EmulatorServer] = []

    def start(**overrides: Any) -> EmulatorServer:
        server = EmulatorServer(replace(QUICK, **overrides)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    """An emulator with the default config."""
    return start_emulator()


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A client whose base URL is the emulator's."""
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as client:
        yield client
