"""Wire schemas of the HTTP API (never the internal records)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app import CAPABILITY
from app.jobs.envelope import BaseUrl, PushLease
from app.records import JobEvent, JobRecord, JobSource, JobState
from domain_client.models import ArtifactRecord

__all__ = [
    "ArtifactPublic",
    "ErrorPublic",
    "JobCreate",
    "JobEventPublic",
    "JobPublic",
    "JobSummary",
    "JobsPublic",
    "ReadyPublic",
]

_EXAMPLE_ENVELOPE: dict[str, Any] = {
    "access_token": "<domain-server bearer token>",
    "access_token_expires_at": "2026-05-01T12:00:00Z",
    "lease_expires_at": "2026-05-01T11:05:00Z",
    "domain_id": "7c1b3a52-3d0e-4d1f-9b0a-2f7f0d9a61c4",
    "domain_server_url": "https://domain.example.com",
    "task": {
        "id": "0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11",
        "job_id": "5a2e0c77-1b9d-4c3e-8f6a-9d4b2c1e0f3a",
        "capability": CAPABILITY,
        "inputs_cids": [
            "https://domain.example.com/api/v1/domains/7c1b3a52-3d0e-4d1f-9b0a-2f7f0d9a61c4"
            "/data/9f8e7d6c-5b4a-4321-8765-0fedcba98765"
        ],
        "outputs_prefix": None,
    },
    "progress_url": "http://127.0.0.1:9000/progress",
}


class JobCreate(PushLease):
    """A lease envelope (the JSON of ``GET {DMS}/tasks``), optionally with a ``progress_url``."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_ENVELOPE]})

    progress_url: BaseUrl | None = Field(
        None,
        description="Receives `POST {progress, events}` (a heartbeat body) as progress changes "
        "(same URL rules as `domain_server_url`).",
    )


class ArtifactPublic(BaseModel):
    """An uploaded artifact, as listed in the DMS receipt.

    The HTTP API's own schema (documented in the OpenAPI, versioned with the node's API), kept
    apart from ``domain_client``'s ``ArtifactRecord`` (the DMS wire model it is built from) so
    that a protocol change cannot silently change the public API.
    """

    logical_path: str = Field(description="Where the artifact sits under the outputs prefix.")
    name: str = Field(description="Domain data name.")
    data_type: str = Field(description="Domain data type, e.g. `splat_data`.")
    id: str | None = Field(description="Domain data id; null when the upload gave none.")

    @classmethod
    def of(cls, record: ArtifactRecord) -> ArtifactPublic:
        return cls.model_validate(record.wire())


class JobEventPublic(BaseModel):
    seq: int
    at: str
    event: dict[str, Any]

    @classmethod
    def of(cls, event: JobEvent) -> JobEventPublic:
        return cls(seq=event.seq, at=event.at, event=event.event)


class JobSummary(BaseModel):
    """A job without its event log."""

    id: str = Field(description="The node's job id (not the DMS job id).")
    source: JobSource
    state: JobState
    task_id: str
    job_id: str | None = Field(description="DMS job id from the lease, if any.")
    domain_id: str | None
    capability: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, Any] = Field(description="The latest progress JSON (protocol §3.7).")
    error: str | None = Field(description="Failure or cancellation reason.")
    artifacts: list[ArtifactPublic]

    @classmethod
    def of(cls, record: JobRecord) -> JobSummary:
        return cls(**_summary_fields(record))


class JobPublic(JobSummary):
    """A job with its events."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
                    "source": "push",
                    "state": "running",
                    "task_id": "0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11",
                    "job_id": "5a2e0c77-1b9d-4c3e-8f6a-9d4b2c1e0f3a",
                    "domain_id": "7c1b3a52-3d0e-4d1f-9b0a-2f7f0d9a61c4",
                    "capability": CAPABILITY,
                    "created_at": "2026-05-01T11:00:00.000Z",
                    "updated_at": "2026-05-01T11:03:10.512Z",
                    "started_at": "2026-05-01T11:00:00.020Z",
                    "finished_at": None,
                    "progress": {
                        "pct": 57,
                        "stage": "python",
                        "status": "running",
                        "pipeline_stage": "train",
                        "step": 2100,
                        "total": 7000,
                        "loss": 0.048,
                        "gaussians": 182311,
                        "eta_s": 241.0,
                        "stage_pct": 30.0,
                    },
                    "error": None,
                    "artifacts": [],
                    "events": [
                        {
                            "seq": 1,
                            "at": "2026-05-01T11:00:00.021Z",
                            "event": {
                                "level": "info",
                                "stage": "workspace",
                                "message": "workspace prepared",
                            },
                        }
                    ],
                }
            ]
        }
    )

    events: list[JobEventPublic]

    @classmethod
    def with_events(cls, record: JobRecord, events: list[JobEvent]) -> JobPublic:
        return cls(**_summary_fields(record), events=[JobEventPublic.of(e) for e in events])


class JobsPublic(BaseModel):
    data: list[JobSummary]
    count: int = Field(description="Jobs matching the filter, all pages together.")


class ErrorPublic(BaseModel):
    detail: str


class ReadyPublic(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description="`ok`, or why a component is not usable.")
    mode: dict[str, bool] = Field(description="Which doors are open: `lease`, `push`, `watch`.")
    state: Literal["idle", "busy"]


def _summary_fields(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "state": record.state,
        "task_id": record.task_id,
        "job_id": record.job_id,
        "domain_id": record.domain_id,
        "capability": record.capability,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "progress": record.progress,
        "error": record.error,
        "artifacts": [ArtifactPublic.of(a) for a in record.artifacts],
    }
