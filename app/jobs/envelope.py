"""The lease envelope the push door accepts: the JSON ``GET {DMS}/tasks`` returns (protocol §1.6).

Unknown fields are ignored and ``null`` is accepted wherever a value is optional (``cancel``
and ``inputs_cids`` included). What the node cannot run without is required: the task id and
capability, the domain id, its server URL and the domain access token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app import CAPABILITY

__all__ = ["PushLease", "PushTask"]


class PushTask(BaseModel):
    """The ``task`` object of a lease (TaskSpec); only the fields the node uses are typed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID = Field(description="DMS task id; the job folder is `<TASKS_ROOT>/<id>`.")
    job_id: UUID | None = None
    capability: str = Field(description=f"Must be `{CAPABILITY}`.")
    inputs_cids: list[str] = Field(
        default_factory=list,
        description="Only the first entry is used: the refined manifest's domain data URL or id.",
    )
    outputs_prefix: str | None = Field(
        None, description="Prefix of the artifacts' logical paths in receipts."
    )
    label: str | None = None
    stage: str | None = None
    meta: Any = None

    @field_validator("inputs_cids", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("capability")
    @classmethod
    def _served_capability(cls, value: str) -> str:
        if value != CAPABILITY:
            raise ValueError(f"unsupported capability {value!r}; this node serves {CAPABILITY}")
        return value


class PushLease(BaseModel):
    """A lease envelope handed straight to the node."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str = Field(
        min_length=1, description="Domain-server bearer for this task (never logged or stored)."
    )
    access_token_expires_at: datetime | None = None
    lease_expires_at: datetime | None = None
    domain_id: UUID
    domain_server_url: str = Field(
        pattern=r"^https?://", description="Base URL of the domain server holding the inputs."
    )
    cancel: bool = Field(False, description="A cancelled lease is refused.")
    status: str | None = None
    task: PushTask

    @field_validator("cancel", mode="before")
    @classmethod
    def _null_is_false(cls, value: object) -> object:
        return False if value is None else value

    @field_validator("cancel")
    @classmethod
    def _not_cancelled(cls, value: bool) -> bool:
        if value:
            raise ValueError("the lease is cancelled (cancel: true); there is nothing to run")
        return value
