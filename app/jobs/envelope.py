"""The push door's rules on the one lease envelope model (``domain_client.models.Lease``).

The push door accepts the JSON ``GET {DMS}/tasks`` returns (protocol §1.6), parsed by the same
model as the lease door: unknown fields are ignored and ``null`` is accepted wherever a value is
optional. A pushed envelope has no heartbeat to fill in what is missing, so :class:`PushLease`
only narrows what the node cannot run without: the task id (a UUID) and capability, the domain
id (a UUID), its server URL and the domain access token; a cancelled envelope is refused.
Ids stay ``str`` as in ``Lease``, in the canonical lower-case UUID form.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from app import CAPABILITY
from domain_client.models import Lease, TaskSpec

__all__ = ["PushLease", "PushTask", "UuidText"]


def _canonical_uuid(value: Any) -> str:
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError as exc:
        raise PydanticCustomError("uuid_parsing", "Input should be a valid UUID") from exc


UuidText = Annotated[str, BeforeValidator(_canonical_uuid)]
"""A UUID, kept as its canonical text (``Lease`` ids are ``str``)."""


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
    domain_server_url: str = Field(
        pattern=r"^https?://", description="Base URL of the domain server holding the inputs."
    )
    task: PushTask

    @field_validator("cancel")
    @classmethod
    def _not_cancelled(cls, value: bool) -> bool:
        if value:
            raise ValueError("the lease is cancelled (cancel: true); there is nothing to run")
        return value
