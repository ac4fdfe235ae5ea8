"""Pydantic models of every wire object exchanged with DMS, DDS and the domain server.

Parsing is lenient as protocol §1.6 asks: unknown fields are ignored, ``null`` is accepted
wherever a value is optional (``cancel: null`` reads as false, ``inputs_cids: null`` as empty),
timestamps take up to nine fractional digits. Request bodies the node sends are serialised with
:meth:`WireModel.wire` so that ``null`` values the protocol requires (``job_id: null``) stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from domain_client.timestamps import format_timestamp, parse_timestamp

__all__ = [
    "ArtifactRecord",
    "ChunkedUploadStart",
    "CompleteBody",
    "CreateJobRequest",
    "CreateTaskRequest",
    "DataMetadata",
    "FailBody",
    "JobMeta",
    "Lease",
    "LeaseUpdate",
    "MultipartInfo",
    "PartEtag",
    "ReceiptMeta",
    "ServerInfo",
    "SiweNonce",
    "SiweToken",
    "TaskSpec",
    "Timestamp",
    "UploadInfo",
]


def _timestamp_or_none(value: Any) -> Any:
    if isinstance(value, str):
        return parse_timestamp(value)
    return value


def _false_if_null(value: Any) -> Any:
    return False if value is None else value


def _empty_if_null(value: Any) -> Any:
    return [] if value is None else value


def _decimal_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp_or_none),
    PlainSerializer(format_timestamp, return_type=str),
]
"""An RFC 3339 timestamp (up to 9 fractional digits in, ``...Z`` out)."""

NullFalse = Annotated[bool, BeforeValidator(_false_if_null)]
NullEmptyList = Annotated[list[str], BeforeValidator(_empty_if_null)]
DecimalText = Annotated[str, BeforeValidator(_decimal_text)]


class WireModel(BaseModel):
    """Base of all wire models: unknown fields ignored, instances immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire (by alias, ``null`` values kept)."""
        return self.model_dump(mode="json", by_alias=True)


# --- DMS -------------------------------------------------------------------------------------


class TaskSpec(WireModel):
    """The ``task`` object of a lease (protocol §1.6); only ``id`` and ``capability`` required."""

    id: str
    capability: str
    job_id: str | None = None
    capability_filters: Any = None
    inputs_cids: NullEmptyList = Field(default_factory=list)
    outputs_prefix: str | None = None
    label: str | None = None
    stage: str | None = None
    meta: Any = None
    priority: int | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    deps_remaining: int | None = None
    status: str | None = None
    mode: str | None = None
    organization_filter: str | None = None
    billing_units: DecimalText | None = None
    estimated_credit_cost: DecimalText | None = None
    debited_amount: DecimalText | None = None
    debited_at: Timestamp | None = None
    lease_expires_at: Timestamp | None = None


class Lease(WireModel):
    """The lease envelope returned by ``GET {DMS}/tasks`` (protocol §1.6)."""

    task: TaskSpec
    access_token: str | None = None
    access_token_expires_at: Timestamp | None = None
    lease_expires_at: Timestamp | None = None
    cancel: NullFalse = False
    status: str | None = None
    domain_id: str | None = None
    domain_server_url: str | None = None

    @property
    def effective_lease_expires_at(self) -> datetime | None:
        """``lease_expires_at``, else the task's (the [SDK] fallback)."""
        return self.lease_expires_at or self.task.lease_expires_at

    def merged(self, update: LeaseUpdate) -> Lease:
        """This lease with every field present in a heartbeat response applied."""
        changes: dict[str, Any] = {
            name: getattr(update, name)
            for name in (
                "access_token",
                "access_token_expires_at",
                "lease_expires_at",
                "status",
                "domain_id",
                "domain_server_url",
            )
            if getattr(update, name) is not None
        }
        if update.cancel is not None:
            changes["cancel"] = update.cancel
        changes["task"] = self._merged_task(update)
        return self.model_copy(update=changes)

    def _merged_task(self, update: LeaseUpdate) -> TaskSpec:
        task = update.task or self.task
        counters = {
            name: getattr(update, name)
            for name in ("job_id", "attempts", "max_attempts", "deps_remaining")
            if getattr(update, name) is not None
        }
        return task.model_copy(update=counters) if counters else task


class LeaseUpdate(WireModel):
    """A heartbeat response: an incremental lease update, every field optional (§1.8)."""

    access_token: str | None = None
    access_token_expires_at: Timestamp | None = None
    lease_expires_at: Timestamp | None = None
    cancel: bool | None = None
    status: str | None = None
    domain_id: str | None = None
    domain_server_url: str | None = None
    task: TaskSpec | None = None
    task_id: str | None = None
    job_id: str | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    deps_remaining: int | None = None


class JobMeta(WireModel):
    """``meta.job`` of a receipt (protocol §1.9)."""

    task_id: str
    job_id: str | None
    domain_id: str | None
    capability: str


class ArtifactRecord(WireModel):
    """One uploaded artifact in a receipt: exactly these four keys (protocol §1.9)."""

    logical_path: str
    name: str
    data_type: str
    id: str | None


class ReceiptMeta(WireModel):
    """``{job, artifacts}``: complete's ``meta`` and a runner failure's ``details``."""

    job: JobMeta
    artifacts: list[ArtifactRecord]


class CompleteBody(WireModel):
    """Body of ``POST {DMS}/tasks/{id}/complete``."""

    output_cids: list[str]
    meta: ReceiptMeta

    @classmethod
    def for_artifacts(cls, job: JobMeta, artifacts: list[ArtifactRecord]) -> CompleteBody:
        """``output_cids`` = ids of the artifacts that have one, in the artifacts' order."""
        cids = [record.id for record in artifacts if record.id is not None]
        return cls(output_cids=cids, meta=ReceiptMeta(job=job, artifacts=artifacts))


class FailBody(WireModel):
    """Body of ``POST {DMS}/tasks/{id}/fail``: ``details`` is any JSON (or null)."""

    reason: str
    details: Any = None


class CreateTaskRequest(WireModel):
    """One task of a ``POST {DMS}/jobs`` request (protocol §1.12)."""

    label: str
    stage: str
    capability: str
    capability_filters: Any = None
    priority: int = 0
    inputs_cids: list[str] = Field(default_factory=list)
    outputs_prefix: str | None = None
    mode: str = "public"
    meta: Any = None
    max_attempts: int = 1


class CreateJobRequest(WireModel):
    """Body of ``POST {DMS}/jobs`` (apps, not nodes; for end-to-end tests)."""

    label: str
    domain_id: str
    priority: int = 0
    meta: Any = None
    tasks: list[CreateTaskRequest]
    edges: list[Any] = Field(default_factory=list)


# --- DDS -------------------------------------------------------------------------------------


class SiweNonce(WireModel):
    """Response of ``POST {DDS}/internal/v1/auth/siwe/request`` (protocol §1.4 a).

    Every field is optional in the parser; :func:`domain_client.siwe.build_siwe_message`
    requires all of them.
    """

    nonce: str | None = None
    domain: str | None = None
    uri: str | None = None
    version: str | None = None
    chain_id: int | None = Field(default=None, alias="chainId")
    issued_at: str | None = Field(default=None, alias="issuedAt")


class SiweToken(WireModel):
    """Response of ``POST {DDS}/internal/v1/auth/siwe/verify`` (protocol §1.5).

    ``access_expires_at`` falls back to ``expires_at`` when absent or ``null``.
    """

    access_token: str
    expires_at: Timestamp = Field(
        validation_alias=AliasChoices("access_expires_at", "expires_at"),
        serialization_alias="access_expires_at",
    )

    @model_validator(mode="before")
    @classmethod
    def _null_expiry_is_absent(cls, data: Any) -> Any:
        # A null ``access_expires_at`` would otherwise win the alias lookup and hide
        # ``expires_at`` (the Rust parser reads null as absent).
        if isinstance(data, dict) and data.get("access_expires_at", "") is None:
            return {k: v for k, v in data.items() if k != "access_expires_at"}
        return data


# --- domain server ---------------------------------------------------------------------------


class DataMetadata(WireModel):
    """A domain data item (protocol §2.4). Only ``id`` is guaranteed (chunked completion)."""

    id: str
    domain_id: str | None = None
    name: str | None = None
    data_type: str | None = None
    size: int | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class MultipartInfo(WireModel):
    enabled: bool = False


class UploadInfo(WireModel):
    """Upload limits in bytes; 0 means unlimited."""

    request_max_bytes: int | None = None
    domain_data_max_bytes: int | None = None
    multipart: MultipartInfo | None = None


class ServerInfo(WireModel):
    """``GET /api/v1/info`` (protocol §2.2); all three keys parsed leniently (§5 #13)."""

    upload: UploadInfo = Field(default_factory=UploadInfo)


class ChunkedUploadStart(WireModel):
    """Response of the chunked-upload initiation (protocol §2.7)."""

    upload_id: str
    part_size: int


class PartEtag(WireModel):
    """One entry of the chunked-upload completion body."""

    part_number: int
    etag: str
