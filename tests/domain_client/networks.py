"""The "server" fixture of the client suite, in two flavours with one interface:

- ``respx``: :class:`~tests.domain_client.fake_network.FakeNetwork`, in memory behind respx;
- ``emulator``: ``emulator`` under uvicorn on 127.0.0.1 (free port), real HTTP.

Tests written against :class:`Network` run unchanged on both, so the client, the emulator and
the spec are checked against each other.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import respx

from tests.domain_client.fake_network import BASE, FakeNetwork

REG_SECRET = "network-reg-secret"
PART_SIZE = 1024


@dataclass(frozen=True)
class TaskResult:
    status: str
    complete_body: Any
    fail_body: Any


class Network(Protocol):
    flavour: str
    dds_base_url: str
    dms_base_url: str
    server_url: str
    reg_secret: str

    def seed(self, domain_id: str, name: str, data_type: str, content: bytes) -> str: ...
    def domain_token(self, domain_id: str) -> str: ...
    def create_task(
        self, domain_id: str, capability: str, inputs_cids: list[str], outputs_prefix: str | None
    ) -> str: ...
    def task_result(self, task_id: str) -> TaskResult: ...
    def content(self, domain_id: str, data_id: str) -> bytes | None: ...
    def names(self, domain_id: str) -> list[tuple[str, str]]: ...
    def fail_next(self, path_fragment: str, status: int) -> None: ...


def new_domain() -> str:
    return str(uuid.uuid4())


class RespxNetwork:
    flavour = "respx"
    dds_base_url = BASE
    dms_base_url = f"{BASE}/v1"
    server_url = BASE
    reg_secret = REG_SECRET

    def __init__(self, mock: respx.MockRouter) -> None:
        self.fake = FakeNetwork(REG_SECRET, part_size=PART_SIZE)
        self.fake.install(mock)

    def seed(self, domain_id: str, name: str, data_type: str, content: bytes) -> str:
        return self.fake.seed(domain_id, name, data_type, content)

    def domain_token(self, domain_id: str) -> str:
        return self.fake.issue_domain_token(domain_id)

    def create_task(
        self, domain_id: str, capability: str, inputs_cids: list[str], outputs_prefix: str | None
    ) -> str:
        return self.fake.create_task(domain_id, capability, inputs_cids, outputs_prefix)

    def task_result(self, task_id: str) -> TaskResult:
        task = self.fake.tasks[task_id]
        return TaskResult(task.status, task.complete_body, task.fail_body)

    def content(self, domain_id: str, data_id: str) -> bytes | None:
        item = self.fake.items.get(data_id)
        return item.content if item is not None and item.domain_id == domain_id else None

    def names(self, domain_id: str) -> list[tuple[str, str]]:
        return sorted(
            (i.name, i.data_type) for i in self.fake.items.values() if i.domain_id == domain_id
        )

    def fail_next(self, path_fragment: str, status: int) -> None:
        self.fake.faults.append((path_fragment, status))


def emulator_module() -> Any | None:
    """``emulator`` if this checkout has it, else None."""
    try:
        return importlib.import_module("emulator")
    except ImportError:
        return None


class EmulatorNetwork:
    flavour = "emulator"
    reg_secret = REG_SECRET

    def __init__(self, server: Any) -> None:
        self._server = server
        self._state = server.state
        self.dds_base_url = server.dds_base_url
        self.dms_base_url = server.dms_base_url
        self.server_url = server.domain_server_url

    @classmethod
    def config(cls, emulator: Any) -> Any:
        return emulator.EmulatorConfig(
            registration_secret=REG_SECRET,
            part_size=PART_SIZE,
            rotate="always",  # every heartbeat hands out a new domain token ...
            revoke_superseded_tokens=True,  # ... and the old one stops working at once
        )

    def seed(self, domain_id: str, name: str, data_type: str, content: bytes) -> str:
        return str(self._state.seed_data(domain_id, name, data_type, content).id)

    def domain_token(self, domain_id: str) -> str:
        return str(self._state.issue_domain_token(domain_id).token)

    def create_task(
        self, domain_id: str, capability: str, inputs_cids: list[str], outputs_prefix: str | None
    ) -> str:
        task = {"capability": capability, "inputs_cids": inputs_cids, "label": "t"}
        if outputs_prefix is not None:
            task["outputs_prefix"] = outputs_prefix
        job = self._state.create_job({"domain_id": domain_id, "label": "j", "tasks": [task]})
        return str(job.task_ids[0])

    def task_result(self, task_id: str) -> TaskResult:
        task = self._state.task(task_id)
        return TaskResult(task.status, task.complete_body, task.fail_body)

    def content(self, domain_id: str, data_id: str) -> bytes | None:
        if not any(item.id == data_id for item in self._state.data_items(domain_id)):
            return None
        return bytes(self._state.read_data(domain_id, data_id))

    def names(self, domain_id: str) -> list[tuple[str, str]]:
        return sorted((i.name, i.data_type) for i in self._state.data_items(domain_id))

    def fail_next(self, path_fragment: str, status: int) -> None:
        self._state.add_fault("any", status=status, count=1, path_contains=path_fragment)
