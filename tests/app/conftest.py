"""Fixtures of the node tests: anyio on asyncio, the emulator with the node tests' config (the
emulator fixtures themselves come from :mod:`tests.support.emulator`) and a plain client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from emulator import EmulatorConfig
from tests.app.domains import EMULATOR_CONFIG


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Every ``emulator`` / ``start_emulator`` reset in the node tests starts from this."""
    return EMULATOR_CONFIG


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client, as the node's services share one."""
    async with httpx.AsyncClient() as client:
        yield client
