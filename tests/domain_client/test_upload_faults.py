"""Upload faults over real loopback HTTP against the emulator (issue 10, "never lose work").

The node's own upload path (``TaskStorage.put_domain_artifact`` of a file: lookup, chunked
start, parts, completion) meets one injected fault: a 502 on the start, a 502 on the completion
after the server stored the item (the answer is lost) or before it did, a timeout on one part,
a lost answer to a single-request create. Afterwards exactly one item carries the name, and its
bytes are the file's. The emulator runs with ``unique_names=False``, so a duplicate would be
stored and counted rather than refused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain_client import DomainClient, DomainToken, RetryPolicy, TaskStorage
from emulator import EmulatorConfig, EmulatorServer

pytestmark = pytest.mark.anyio

PART_SIZE = 4096
CONTENT = os.urandom(3 * PART_SIZE - 100)  # three parts, the last one short
NAME = "refined_splat_2025-01-02_03-04-05"
TYPE = "splat_data"
MULTIPART = "/data/multipart"
POLICY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
TIMEOUT_S = 1.0
"""Client read timeout of these tests; a delayed part waits three times longer."""


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(part_size=PART_SIZE, unique_names=False)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def domain_id(emulator: EmulatorServer) -> Iterator[str]:
    emulator.state.clear_faults()
    yield str(uuid.uuid4())
    emulator.state.clear_faults()


@pytest.fixture
async def storage(emulator: EmulatorServer, domain_id: str) -> AsyncIterator[TaskStorage]:
    token = DomainToken(emulator.state.issue_domain_token(domain_id).token)
    async with httpx.AsyncClient() as http:
        domain = DomainClient(
            http,
            emulator.domain_server_url,
            domain_id,
            token,
            "upload-faults",
            request_timeout_s=TIMEOUT_S,
            retry=POLICY,
        )
        yield TaskStorage(domain, "task-1", None)


@pytest.fixture
def splat(tmp_path: Path) -> Path:
    path = tmp_path / "splat_rot.splat"
    path.write_bytes(CONTENT)
    return path


def requests(emulator: EmulatorServer, domain_id: str, method: str, query: str) -> list[Any]:
    """Domain requests of this test's domain with ``method`` whose query contains ``query``."""
    return [
        record
        for record in emulator.state.requests.records("domain")
        if domain_id in record.path and record.method == method and query in record.query
    ]


def assert_exactly_one_item(emulator: EmulatorServer, domain_id: str, record_id: str) -> None:
    """One item of that name and type, holding the file's bytes, and no upload left open."""
    state = emulator.state
    items = [i for i in state.data_items(domain_id) if (i.name, i.data_type) == (NAME, TYPE)]
    assert [item.id for item in items] == [record_id]
    assert bytes(state.read_data(domain_id, record_id)) == CONTENT
    assert [u.id for u in state.data.uploads.values() if u.domain_id == domain_id] == []


async def test_502_on_upload_start(
    emulator: EmulatorServer, domain_id: str, storage: TaskStorage, splat: Path
) -> None:
    emulator.state.add_fault(
        "domain", 502, method="POST", path_contains=MULTIPART, query_contains="uploads"
    )
    record = await storage.put_domain_artifact(NAME, NAME, TYPE, splat)
    assert record.id is not None
    assert_exactly_one_item(emulator, domain_id, record.id)
    starts = requests(emulator, domain_id, "POST", "uploads")
    assert [r.status for r in starts] == [502, 200]
    assert len(requests(emulator, domain_id, "POST", "uploadId=")) == 1


async def test_502_on_completion_after_the_item_was_stored(
    emulator: EmulatorServer, domain_id: str, storage: TaskStorage, splat: Path
) -> None:
    emulator.state.add_fault(
        "domain",
        502,
        method="POST",
        path_contains=MULTIPART,
        query_contains="uploadId=",
        after=True,  # served (item stored), then answered 502: the answer is lost
    )
    record = await storage.put_domain_artifact(NAME, NAME, TYPE, splat)
    assert record.id is not None
    assert_exactly_one_item(emulator, domain_id, record.id)
    completions = requests(emulator, domain_id, "POST", "uploadId=")
    assert [r.status for r in completions] == [502]  # found by name, never re-sent
    lookups = requests(emulator, domain_id, "GET", "name=")
    assert len(lookups) == 2  # the upsert's lookup, then the one before a re-send


async def test_502_on_completion_before_the_item_was_stored(
    emulator: EmulatorServer, domain_id: str, storage: TaskStorage, splat: Path
) -> None:
    emulator.state.add_fault(
        "domain", 502, method="POST", path_contains=MULTIPART, query_contains="uploadId="
    )
    record = await storage.put_domain_artifact(NAME, NAME, TYPE, splat)
    assert record.id is not None
    assert_exactly_one_item(emulator, domain_id, record.id)
    completions = requests(emulator, domain_id, "POST", "uploadId=")
    assert [r.status for r in completions] == [502, 200]  # looked up, not there, re-sent once


async def test_timeout_on_one_part(
    emulator: EmulatorServer, domain_id: str, storage: TaskStorage, splat: Path
) -> None:
    emulator.state.add_fault(
        "domain",
        None,  # no status: the request is only held, longer than the client waits
        delay_s=3 * TIMEOUT_S,
        method="PUT",
        path_contains=MULTIPART,
        query_contains="partNumber=2",
    )
    record = await storage.put_domain_artifact(NAME, NAME, TYPE, splat)
    assert record.id is not None
    assert_exactly_one_item(emulator, domain_id, record.id)
    sent = [len(requests(emulator, domain_id, "PUT", f"partNumber={n}")) for n in (1, 2, 3)]
    assert sent == [1, 2, 1]  # only the part that timed out was sent again
    assert len(requests(emulator, domain_id, "POST", "uploadId=")) == 1


async def test_lost_answer_to_a_single_request_create(
    emulator: EmulatorServer, domain_id: str, storage: TaskStorage
) -> None:
    emulator.state.add_fault(
        "domain", 502, method="POST", path_contains=f"{domain_id}/data", after=True
    )
    record = await storage.put_domain_artifact(NAME, NAME, TYPE, CONTENT)
    assert record.id is not None
    assert_exactly_one_item(emulator, domain_id, record.id)
    creates = [
        r
        for r in emulator.state.requests.records("domain")
        if r.method == "POST" and r.path.endswith(f"{domain_id}/data")
    ]
    assert [r.status for r in creates] == [502]
