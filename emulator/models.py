"""Request bodies the emulated services accept (pydantic v2), per protocol.md.

Unknown fields are ignored, as the real services do. Responses are built as plain dicts by the
services (their shapes are documented where they are built), so that what goes on the wire is
exactly what the spec lists, `null`s included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emulator.middleware import FaultTarget
from emulator.rules import is_uuid


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- DDS (§1.4, §1.5)


class NonceRequest(_Body):
    """`POST /internal/v1/auth/siwe/request`."""

    wallet: str


class RegisterWalletRequest(_Body):
    """`POST /internal/v1/nodes/register-wallet`."""

    message: str
    signature: str
    registration_credentials: str
    capabilities: list[str]
    version: str


class VerifyRequest(_Body):
    """`POST /internal/v1/auth/siwe/verify`."""

    address: str
    message: str
    signature: str


# ---------------------------------------------------------------- DMS (§1.8, §1.9, §1.12)


class TaskCreate(_Body):
    """One task of a job (§1.12)."""

    capability: str = Field(min_length=1)
    label: str | None = None
    stage: str | None = None
    capability_filters: Any = None
    priority: int | None = None
    inputs_cids: list[str] = Field(default_factory=list)
    outputs_prefix: str | None = None
    mode: str = "public"
    meta: Any = None
    max_attempts: int | None = Field(default=None, ge=1)


class Edge(_Body):
    """Task `to` waits until task `from` completed; each end is a task label or list index.

    The spec only ever shows `edges: []`; this shape is the emulator's own choice.
    """

    from_: str | int = Field(alias="from")
    to: str | int


class JobCreate(_Body):
    """`POST /v1/jobs` (§1.12)."""

    domain_id: str
    label: str | None = None
    priority: int = 0
    meta: Any = None
    tasks: list[TaskCreate] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)

    @field_validator("domain_id")
    @classmethod
    def _domain_is_uuid(cls, value: str) -> str:
        if not is_uuid(value):
            raise ValueError("domain_id must be a canonical UUID")
        return value.lower()


class HeartbeatRequest(_Body):
    """`POST /v1/tasks/{id}/heartbeat` (§1.8): `progress` is required (any JSON)."""

    progress: Any = Field(...)
    events: list[dict[str, Any]] = Field(default_factory=list)


class CompleteRequest(_Body):
    """`POST /v1/tasks/{id}/complete` (§1.9)."""

    output_cids: list[str]
    meta: Any = None


class FailRequest(_Body):
    """`POST /v1/tasks/{id}/fail` (§1.9)."""

    reason: str
    details: Any = None


# ---------------------------------------------------------------- domain server (§2.7)


class UploadInitiate(_Body):
    """`POST …/data/multipart?uploads`."""

    name: str = ""
    data_type: str = ""
    size: int | None = Field(default=None, ge=0)
    content_type: str | None = None
    existing_id: str | None = None


class PartRef(_Body):
    """One entry of the completion's `parts` list."""

    part_number: int = Field(ge=1)
    etag: str


class UploadComplete(_Body):
    """`POST …/data/multipart?uploadId=…`."""

    parts: list[PartRef] = Field(min_length=1)


# ---------------------------------------------------------------- admin (/_emulator)


class FaultCreate(_Body):
    """`POST /_emulator/faults`: answer the next `count` matching requests with `status`
    (after `delay_s` seconds), or only delay them when `status` is null. `query_contains`
    matches the raw query string; `after` serves the request first and replaces its answer."""

    service: FaultTarget = "any"
    status: int | None = Field(default=503, ge=100, le=599)
    count: int = Field(default=1, ge=1)
    delay_s: float = Field(default=0.0, ge=0.0)
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None
    after: bool = False


class ClockAdvance(_Body):
    """`POST /_emulator/clock/advance`."""

    seconds: float = Field(ge=0.0)


class TokenRequest(_Body):
    """`POST /_emulator/domains/{d}/token`: a domain token outside any lease."""

    ttl_s: float | None = Field(default=None, gt=0.0)
