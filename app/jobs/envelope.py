"""The push door's rules on the one lease envelope model (``domain_client.models.Lease``).

The push door accepts the JSON ``GET {DMS}/tasks`` returns (protocol §1.6), parsed by the same
model as the lease door: unknown fields are ignored and ``null`` is accepted wherever a value is
optional. A pushed envelope has no heartbeat to fill in what is missing, so :class:`PushLease`
only narrows what the node cannot run without: the task id (a UUID) and capability, the domain
id (a UUID), its server URL and the domain access token; a cancelled envelope, an expired
token (``access_token_expires_at`` in the past) and a server URL whose form breaks the SSRF
rules of :mod:`app.targets` (userinfo, query, fragment, odd IP forms) are refused. Whether its
host may be reached is checked by the service, which knows ``SPLATTER_ALLOWED_DOMAIN_HOSTS``.
Ids stay ``str`` as in ``Lease``, in the canonical lower-case UUID form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from app import CAPABILITY
from app.targets import url_form_problem
from domain_client.models import Lease, TaskSpec, Timestamp
from domain_client.timestamps import format_timestamp, utc_now

__all__ = ["BaseUrl", "PushLease", "PushTask", "TokenGrant", "UuidText", "unexpired"]


def _canonical_uuid(value: Any) -> str:
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError as exc:
        raise PydanticCustomError("uuid_parsing", "Input should be a valid UUID") from exc


UuidText = Annotated[str, BeforeValidator(_canonical_uuid)]
"""A UUID, kept as its canonical text (``Lease`` ids are ``str``)."""


def _base_url_form(value: str) -> str:
    problem = url_form_problem(value)
    if problem is not None:
        raise ValueError(f"URL {problem}")
    return value


BaseUrl = Annotated[str, AfterValidator(_base_url_form)]
"""An http(s) URL the node appends paths to: no userinfo, query or fragment (app.targets)."""


def unexpired(value: datetime | None) -> datetime | None:
    """Refuses a token expiry in the past (the token would be refused by the domain)."""
    if value is not None and value <= utc_now():
        raise ValueError(
            f"the domain token expired at {format_timestamp(value)}; ask DMS for a fresh lease"
        )
    return value


class PushTask(TaskSpec):
    """The ``task`` of a pushed envelope: a UUID id and the capability this node serves."""

    id: UuidText = Field(description="DMS task id; the job folder is `<TASKS_ROOT>/<id>`.")
    job_id: UuidText | None = None
    capability: str = Field(description=f"Must be `{CAPABILITY}`.")

    @field_validator("capability")
    @classmethod
    def _served_capability(cls, value: str) -> str:
        if value != CAPABILITY:
            raise ValueError(f"unsupported capability {value!r}; this node serves {CAPABILITY}")
        return value


class PushLease(Lease):
    """A lease envelope handed straight to the node (``Lease`` with the push door's rules)."""

    access_token: str = Field(
        min_length=1, description="Domain-server bearer for this task (never logged or stored)."
    )
    domain_id: UuidText
    domain_server_url: BaseUrl = Field(
        description="Base URL of the domain server holding the inputs (http/https, a host and "
        "an optional path prefix; no userinfo, query or fragment)."
    )
    task: PushTask

    @field_validator("access_token_expires_at")
    @classmethod
    def _token_not_expired(cls, value: datetime | None) -> datetime | None:
        return unexpired(value)

    @field_validator("cancel")
    @classmethod
    def _not_cancelled(cls, value: bool) -> bool:
        if value:
            raise ValueError("the lease is cancelled (cancel: true); there is nothing to run")
        return value


class TokenGrant(BaseModel):
    """A fresh domain token for a queued or running push job (``PUT /jobs/{id}/token``)."""

    access_token: str = Field(min_length=1, description="The new domain-server bearer.")
    access_token_expires_at: Annotated[Timestamp | None, AfterValidator(unexpired)] = Field(
        None, description="When the new token expires (RFC 3339); must be in the future."
    )
