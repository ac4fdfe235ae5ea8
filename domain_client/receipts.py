"""Receipt bodies for DMS complete/fail (protocol §1.7, §1.9).

Failure reasons are cut to 4096 bytes on a UTF-8 character boundary; runner-failure details
over :data:`MAX_DETAILS_BYTES` are replaced by ``null`` (the reason is kept), as [NH] does.
"""

from __future__ import annotations

import json
from typing import Literal

from domain_client.models import ArtifactRecord, CompleteBody, FailBody, JobMeta, Lease, ReceiptMeta

__all__ = [
    "MAX_DETAILS_BYTES",
    "MAX_REASON_BYTES",
    "SetupStage",
    "complete_body",
    "job_meta",
    "runner_failure_body",
    "runner_failure_reason",
    "setup_failure_body",
    "truncate_utf8",
    "unknown_capability_body",
]

MAX_REASON_BYTES = 4096
MAX_DETAILS_BYTES = 64 * 1024
SetupStage = Literal["start_session", "initial_heartbeat", "build_ports"]


def truncate_utf8(text: str, max_bytes: int = MAX_REASON_BYTES) -> str:
    """``text`` as valid UTF-8, cut to at most ``max_bytes`` without splitting a character.

    Lone surrogates (a child's JSON ``"\udcff"`` escape of an undecodable path) cannot be sent
    as UTF-8: each becomes ``?`` instead of crashing the receipt (which would then never go out).
    """
    encoded = text.encode("utf-8", errors="replace")
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def job_meta(lease: Lease) -> JobMeta:
    """``meta.job`` from the current lease."""
    return JobMeta(
        task_id=lease.task.id,
        job_id=lease.task.job_id,
        domain_id=lease.domain_id,
        capability=lease.task.capability,
    )


def complete_body(job: JobMeta, artifacts: list[ArtifactRecord]) -> CompleteBody:
    return CompleteBody.for_artifacts(job, artifacts)


def runner_failure_reason(error: BaseException) -> str:
    """``runner failed: <top-level message>`` (only the outermost error, never its causes)."""
    message = str(error) or type(error).__name__
    return truncate_utf8(f"runner failed: {message}")


def _bounded_details(details: ReceiptMeta) -> ReceiptMeta | None:
    encoded = json.dumps(details.wire(), separators=(",", ":")).encode()
    return details if len(encoded) <= MAX_DETAILS_BYTES else None


def runner_failure_body(
    error: BaseException, job: JobMeta, artifacts: list[ArtifactRecord]
) -> FailBody:
    """Fail body of a runner error: details ``{job, artifacts}`` (or null when oversized)."""
    details = _bounded_details(ReceiptMeta(job=job, artifacts=artifacts))
    return FailBody(
        reason=runner_failure_reason(error),
        details=details.wire() if details is not None else None,
    )


def unknown_capability_body(job: JobMeta) -> FailBody:
    """[NH] form for a lease whose capability has no handler (§5 #10)."""
    reason = truncate_utf8(f"no runner registered for capability: {job.capability}")
    return FailBody(reason=reason, details=ReceiptMeta(job=job, artifacts=[]).wire())


def setup_failure_body(stage: SetupStage, error: str) -> FailBody:
    """``node_setup_failed`` with ``{"stage", "error"}`` details (§1.7)."""
    return FailBody(
        reason="node_setup_failed",
        details={"stage": stage, "error": truncate_utf8(error)},
    )
