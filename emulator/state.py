"""`EmulatorState`: the three services' state in one object, and the Python API tests and the
demo use in-process.

The HTTP routers and the Python API both go through `state.lock`, since uvicorn serves from its
own thread while a test thread may be reading or arming things at the same moment.
"""

from __future__ import annotations

import threading
from typing import Any

from emulator.clock import Clock, rfc3339
from emulator.config import EmulatorConfig
from emulator.domain_data import DomainData
from emulator.errors import bad_request
from emulator.grants import DomainGrant, DomainTokens
from emulator.middleware import (
    Fault,
    FaultBook,
    FaultTarget,
    RequestLog,
    RequestRecord,
    Service,
)
from emulator.models import JobCreate
from emulator.queue import JobRecord, TaskQueue, TaskRecord
from emulator.registry import NodeRecord, NodeRegistry
from emulator.rules import is_uuid
from emulator.storage import DataItem, open_store
from emulator.tokens import TokenSigner


class EmulatorState:
    """DDS registry, DMS queue, domain data, faults and the request log, behind one lock."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = Clock()
        self.lock = threading.RLock()
        signer = TokenSigner(self.config.token_secret)
        self.domain_tokens = DomainTokens(signer, self.clock)
        self.registry = NodeRegistry(self.config, self.clock, signer)
        self.queue = TaskQueue(self.config, self.clock, self.domain_tokens)
        self.data = DomainData(self.config, self.clock, open_store(self.config.data_dir))
        self.faults = FaultBook()
        self.requests = RequestLog(self.config.request_log_size)

    def public_url(self, request_base_url: str | None = None) -> str:
        """The base URL clients reach the emulator at: configured, else the request's own."""
        url = request_base_url if self.config.public_url is None else self.config.public_url
        if not url:
            raise RuntimeError("no public_url configured and no request to derive it from")
        return url.rstrip("/")

    # ------------------------------------------------------------ DMS

    def create_job(self, body: JobCreate | dict[str, Any]) -> JobRecord:
        """Create a job (the `POST /v1/jobs` body, §1.12) without the app bearer."""
        job = body if isinstance(body, JobCreate) else JobCreate.model_validate(body)
        with self.lock:
            return self.queue.create_job(job)

    def task(self, task_id: str) -> TaskRecord:
        """One task (after expiring overdue leases); KeyError if unknown."""
        with self.lock:
            self.queue.sweep()
            return self.queue.tasks[task_id]

    def tasks(self) -> list[TaskRecord]:
        """Every task, oldest first (after expiring overdue leases)."""
        with self.lock:
            self.queue.sweep()
            return list(self.queue.tasks.values())

    def cancel_task(self, task_id: str) -> TaskRecord:
        """Request cancellation (delivered by the next heartbeat if the task is leased)."""
        with self.lock:
            return self.queue.cancel(task_id)

    # ------------------------------------------------------------ DDS

    def register_node(
        self, wallet: str, capabilities: list[str], version: str = "0.0.0"
    ) -> NodeRecord:
        """Register a wallet without SIWE (for tests of later stages)."""
        with self.lock:
            return self.registry.register_directly(wallet, capabilities, version)

    def deregister_node(self, wallet: str) -> bool:
        """Forget a wallet: DMS then answers 401 and SIWE verify 403."""
        with self.lock:
            return self.registry.deregister(wallet)

    def issue_access_token(self, wallet: str) -> str:
        """A DMS bearer for a registered wallet, without SIWE."""
        with self.lock:
            return self.registry.issue_access_token(wallet)["access_token"]

    # ------------------------------------------------------------ domain server

    def seed_data(self, domain_id: str, name: str, data_type: str, content: bytes) -> DataItem:
        """Store an item directly (replacing one of the same name and type)."""
        with self.lock:
            return self.data.seed(domain_id, name, data_type, content)

    def data_items(self, domain_id: str) -> list[DataItem]:
        """Every item of a domain."""
        with self.lock:
            return self.data.store.items(domain_id.lower())

    def read_data(self, domain_id: str, data_id: str) -> bytes:
        """An item's content; raises `EmulatorError` (404) if unknown."""
        with self.lock:
            return self.data.content(domain_id.lower(), data_id)

    def issue_domain_token(
        self, domain_id: str, ttl_s: float | None = None, server_url: str | None = None
    ) -> DomainGrant:
        """A domain token outside any lease, for `server_url` (default: the public URL)."""
        if not is_uuid(domain_id):
            raise bad_request("domain id must be a canonical UUID")
        ttl = ttl_s if ttl_s is not None else self.config.token_ttl
        with self.lock:
            audience = server_url.rstrip("/") if server_url else self.public_url()
            return self.domain_tokens.issue(domain_id.lower(), audience, ttl)

    # ------------------------------------------------------------ faults, clock, log

    def add_fault(
        self,
        service: FaultTarget,
        status: int | None = 503,
        count: int = 1,
        delay_s: float = 0.0,
        method: str | None = None,
        path_contains: str | None = None,
        query_contains: str | None = None,
        after: bool = False,
    ) -> Fault:
        """Answer the next `count` matching requests with `status` (None: only delay them;
        `after`: serve them, then replace the answer)."""
        return self.faults.add(
            service, status, count, delay_s, method, path_contains, query_contains, after
        )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    def advance_clock(self, seconds: float) -> str:
        """Move emulated time forward (expires leases, tokens, nonces); returns the new now."""
        with self.lock:
            return rfc3339(self.clock.advance(seconds))

    def request_log(self, service: Service | None = None) -> list[RequestRecord]:
        """Requests seen so far, oldest first, optionally of one service."""
        return self.requests.records(service)
