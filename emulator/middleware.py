"""Fault injection and the request log: one ASGI middleware in front of the three services.

Every request is classified by path (`/internal/…` DDS, `/v1/…` DMS, `/api/…` domain server,
`/_emulator/…` admin), recorded in a bounded log (method, path, query, the headers tests care
about, response status) and checked against the armed faults. Admin requests are logged but never
faulted, so a test can always disarm what it armed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.clock import Clock, rfc3339

Service = Literal["dds", "dms", "domain", "admin", "other"]
FaultTarget = Literal["dds", "dms", "domain", "any"]
LOGGED_HEADERS = (
    "authorization",
    "accept",
    "content-type",
    "content-length",
    "posemesh-client-id",
    "posemesh-sdk-version",
)


def classify(path: str) -> Service:
    """Which emulated service a request path belongs to."""
    if path.startswith("/internal/"):
        return "dds"
    if path.startswith("/v1/"):
        return "dms"
    if path.startswith("/api/"):
        return "domain"
    if path.startswith("/_emulator"):
        return "admin"
    return "other"


@dataclass
class Fault:
    """Answer the next `remaining` matching requests with `status` after `delay_s` seconds;
    `status` None only delays them and lets them through. With `after`, the request is served
    first and its answer replaced by `status`: the server acted, the client sees a failure
    (an answer lost on the way back)."""

    id: int
    service: FaultTarget
    status: int | None
    remaining: int
    delay_s: float = 0.0
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None
    after: bool = False

    def matches(self, service: Service, method: str, path: str, query: str = "") -> bool:
        """True if this fault applies to the request."""
        return (
            self.remaining > 0
            and self.service in (service, "any")
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.query_contains is None or self.query_contains in query)
        )


class FaultBook:
    """The armed faults; the first match is used and counted down."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(
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
        """Arm a fault for the next `count` matching requests."""
        fault = Fault(
            next(self._ids),
            service,
            status,
            count,
            delay_s,
            method,
            path_contains,
            query_contains,
            after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, service: Service, method: str, path: str, query: str = "") -> Fault | None:
        """The first armed fault matching the request, counted down by one."""
        if service == "admin":
            return None
        with self._lock:
            for fault in self._faults:
                if fault.matches(service, method, path, query):
                    fault.remaining -= 1
                    return fault
        return None

    def armed(self) -> list[Fault]:
        """Faults with uses left."""
        with self._lock:
            return [fault for fault in self._faults if fault.remaining > 0]

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._faults.clear()


@dataclass
class RequestRecord:
    """One request as the emulator saw it."""

    at: str
    service: Service
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int | None = None
    fault: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON object."""
        return asdict(self)


@dataclass
class RequestLog:
    """The last `size` requests, oldest first."""

    size: int = 10_000
    _records: deque[RequestRecord] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._records = deque(maxlen=self.size)

    def append(self, record: RequestRecord) -> None:
        """Record a request."""
        with self._lock:
            self._records.append(record)

    def records(self, service: Service | None = None) -> list[RequestRecord]:
        """All records, or those of one service."""
        with self._lock:
            return [r for r in self._records if service is None or r.service == service]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._records.clear()


class Traffic(Protocol):
    """What the middleware needs of the emulator state (looked up per request, so that the
    state can be swapped by a reset)."""

    faults: FaultBook
    requests: RequestLog
    clock: Clock


class EmulatorMiddleware:
    """Records every HTTP request and applies armed faults before the app sees it."""

    def __init__(self, app: ASGIApp, traffic: Callable[[], Traffic]) -> None:
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traffic = self.traffic()
        record = _record(scope, traffic.clock)
        traffic.requests.append(record)

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
            await send(message)

        fault = traffic.faults.take(record.service, record.method, record.path, record.query)
        if fault is not None:
            record.fault = fault.id
            await asyncio.sleep(fault.delay_s)
            if fault.after and fault.status is not None:
                await self.app(scope, receive, _discard)  # served, then its answer is lost
                await _respond_fault(send_recording, fault.id, fault.status)
                return
            if fault.status is not None:
                await _drain(receive)
                await _respond_fault(send_recording, fault.id, fault.status)
                return
        await self.app(scope, receive, send_recording)


def _record(scope: Scope, clock: Clock) -> RequestRecord:
    headers = {
        key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
    }
    path = str(scope["path"])
    return RequestRecord(
        at=rfc3339(clock.now()),
        service=classify(path),
        method=str(scope["method"]),
        path=path,
        query=bytes(scope.get("query_string", b"")).decode("latin-1"),
        headers={name: headers[name] for name in LOGGED_HEADERS if name in headers},
    )


async def _discard(message: Message) -> None:
    """A `send` that drops what the app answers (an `after` fault replaces it)."""


async def _drain(receive: Receive) -> None:
    """Read and drop the request body, so the client is not cut off mid-upload."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _respond_fault(send: Send, fault_id: int, status: int) -> None:
    body = json.dumps({"detail": f"injected fault #{fault_id} ({status})"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
