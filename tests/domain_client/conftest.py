"""Fixtures of the domain_client suite: anyio on asyncio, a shared httpx client, and a guard
that fails any test whose sockets reach beyond loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.domain_client.factories import shared_ssl_context

# No test of this package may open a socket to anything but loopback (autouse).
from tests.support.loopback import loopback_only_session as loopback_only_session


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=shared_ssl_context()) as client:
        yield client
