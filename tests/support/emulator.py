"""The emulator fixtures (a pytest plugin, registered in ``tests/conftest.py``).

One emulator (uvicorn on a free loopback port, in a daemon thread) serves the whole session;
every test that asks for ``emulator`` gets it reset to a fresh, empty state, which costs
microseconds instead of a uvicorn start and stop. ``start_emulator(lease_ttl=2)`` resets it with
config overrides on top of ``emulator_config``, which a test package's conftest may override
(the node tests use their own registration secret and app token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from emulator import EmulatorConfig, EmulatorServer

__all__ = ["DEFAULT_CONFIG", "StartEmulator"]

StartEmulator = Callable[..., EmulatorServer]
"""``start_emulator(**overrides)``: the session's emulator, reset with config overrides."""

DEFAULT_CONFIG = EmulatorConfig(token_secret="test-secret")


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    """The session's server; use ``emulator`` or ``start_emulator`` for a fresh state."""
    with EmulatorServer(DEFAULT_CONFIG) as server:
        yield server


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """The config every reset starts from (override it in a conftest)."""
    return DEFAULT_CONFIG


@pytest.fixture
def start_emulator(
    emulator_server: EmulatorServer, emulator_config: EmulatorConfig
) -> StartEmulator:
    """Resets the session's emulator to a fresh state with config overrides; returns it."""

    def start(**overrides: Any) -> EmulatorServer:
        emulator_server.reset(replace(emulator_config, **overrides))
        return emulator_server

    return start


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    """The emulator, fresh, with ``emulator_config``."""
    return start_emulator()
