"""The emulated DMS task queue: jobs, tasks, leases, heartbeats, receipts (protocol §1.6–§1.12).

Task life cycle (`TaskRecord.status`, the DMS status strings):

    waiting ──deps done──▶ pending ──GET /tasks──▶ leased ──complete──▶ completed
                              ▲                      │ ├──fail────────▶ failed
                              └── lease expired ─────┘ ├──expired, attempts used up ─▶ failed
                                  (attempts left)      └──cancel delivered by heartbeat ─▶ cancelled

`attempts` grows by one per lease. A lease lives `lease_ttl` seconds from the lease call and from
every heartbeat; expiry is noticed lazily by `sweep()`, which every public method runs first.
A cancel request on a leased task is delivered by the next heartbeat (`cancel: true`), which also
ends the lease; a cancel on a task nobody holds takes effect at once.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from emulator.clock import Clock, rfc3339
from emulator.config import EmulatorConfig
from emulator.errors import bad_request, conflict, gone, not_found
from emulator.grants import DomainGrant, DomainTokens
from emulator.models import Edge, JobCreate, TaskCreate

TaskStatus = Literal["waiting", "pending", "leased", "completed", "failed", "cancelled"]
TERMINAL: frozenset[TaskStatus] = frozenset({"completed", "failed", "cancelled"})


@dataclass
class Lease:
    """The live lease of a task: who holds it, until when, and its current domain token."""

    wallet: str
    leased_at: datetime
    expires_at: datetime
    grant: DomainGrant
    server_url: str

    def to_json(self) -> dict[str, Any]:
        """Admin view."""
        return {
            "wallet": self.wallet,
            "leased_at": rfc3339(self.leased_at),
            "lease_expires_at": rfc3339(self.expires_at),
            "access_token": self.grant.token,
            "access_token_expires_at": rfc3339(self.grant.expires_at),
            "domain_server_url": self.server_url,
        }


@dataclass
class HeartbeatRecord:
    """One accepted heartbeat: its body and whether it rotated the token."""

    at: str
    wallet: str
    progress: Any
    events: list[dict[str, Any]]
    rotated: bool


@dataclass
class TaskRecord:
    """Everything DMS knows about one task."""

    id: str
    job_id: str
    domain_id: str
    spec_in: TaskCreate
    priority: int
    max_attempts: int
    seq: int
    created_at: str
    status: TaskStatus = "pending"
    attempts: int = 0
    deps_remaining: int = 0
    children: list[str] = field(default_factory=list)
    lease: Lease | None = None
    cancel_requested: bool = False
    heartbeats: list[HeartbeatRecord] = field(default_factory=list)
    lease_history: list[dict[str, Any]] = field(default_factory=list)
    complete_body: Any = None
    fail_body: Any = None
    end_reason: str | None = None

    @property
    def capability(self) -> str:
        """The capability a node must have registered to lease this task."""
        return self.spec_in.capability

    @property
    def events(self) -> list[dict[str, Any]]:
        """All events received in heartbeats, in arrival order (duplicates kept)."""
        return [event for beat in self.heartbeats for event in beat.events]

    @property
    def progress_history(self) -> list[Any]:
        """The `progress` value of every heartbeat, in order."""
        return [beat.progress for beat in self.heartbeats]

    def spec(self) -> dict[str, Any]:
        """The TaskSpec of §1.6 (decimal amounts as strings, optional values as null)."""
        source = self.spec_in
        return {
            "id": self.id,
            "job_id": self.job_id,
            "capability": source.capability,
            "capability_filters": source.capability_filters,
            "inputs_cids": list(source.inputs_cids),
            "outputs_prefix": source.outputs_prefix,
            "label": source.label,
            "stage": source.stage,
            "meta": source.meta,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "deps_remaining": self.deps_remaining,
            "status": self.status,
            "mode": source.mode,
            "organization_filter": None,
            "billing_units": "1",
            "estimated_credit_cost": "0",
            "debited_amount": "0",
            "debited_at": None,
            "lease_expires_at": rfc3339(self.lease.expires_at) if self.lease else None,
        }

    def to_json(self) -> dict[str, Any]:
        """Admin view: spec, lease, heartbeats, receipts."""
        return {
            "id": self.id,
            "job_id": self.job_id,
            "domain_id": self.domain_id,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "cancel_requested": self.cancel_requested,
            "spec": self.spec(),
            "lease": self.lease.to_json() if self.lease else None,
            "lease_history": list(self.lease_history),
            "heartbeats": [asdict(beat) for beat in self.heartbeats],
            "progress": self.heartbeats[-1].progress if self.heartbeats else None,
            "progress_history": self.progress_history,
            "events": self.events,
            "complete": self.complete_body,
            "fail": self.fail_body,
            "end_reason": self.end_reason,
        }


@dataclass
class JobRecord:
    """A job as created by `POST /v1/jobs`."""

    id: str
    label: str | None
    domain_id: str
    priority: int
    meta: Any
    task_ids: list[str]
    edges: list[tuple[str, str]]
    created_at: str


class TaskQueue:
    """Jobs, tasks and leases, with the DMS rules of protocol §1.6–§1.12."""

    def __init__(self, config: EmulatorConfig, clock: Clock, tokens: DomainTokens) -> None:
        self._config = config
        self._clock = clock
        self._tokens = tokens
        self._seq = itertools.count()
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}

    # ------------------------------------------------------------ jobs

    def create_job(self, body: JobCreate) -> JobRecord:
        """Store a job and its tasks; tasks with unfinished parents wait."""
        job_id = str(uuid.uuid4())
        now = rfc3339(self._clock.now())
        records = [self._new_task(job_id, body, task, now) for task in body.tasks]
        edges = [_resolve_edge(edge, records, body.tasks) for edge in body.edges]
        _reject_cycles(records, edges)
        by_id = {record.id: record for record in records}
        for parent, child in edges:
            by_id[parent].children.append(child)
            by_id[child].deps_remaining += 1
            by_id[child].status = "waiting"
        job = JobRecord(
            id=job_id,
            label=body.label,
            domain_id=body.domain_id,
            priority=body.priority,
            meta=body.meta,
            task_ids=list(by_id),
            edges=edges,
            created_at=now,
        )
        self.jobs[job_id] = job
        self.tasks.update(by_id)
        return job

    def _new_task(self, job_id: str, job: JobCreate, task: TaskCreate, now: str) -> TaskRecord:
        return TaskRecord(
            id=str(uuid.uuid4()),
            job_id=job_id,
            domain_id=job.domain_id,
            spec_in=task,
            priority=task.priority if task.priority is not None else job.priority,
            max_attempts=task.max_attempts or self._config.default_max_attempts,
            seq=next(self._seq),
            created_at=now,
        )

    def job_json(self, job: JobRecord) -> dict[str, Any]:
        """The `POST /v1/jobs` response body: the job and its tasks' specs."""
        return {
            "id": job.id,
            "label": job.label,
            "domain_id": job.domain_id,
            "priority": job.priority,
            "meta": job.meta,
            "created_at": job.created_at,
            "tasks": [self.tasks[task_id].spec() for task_id in job.task_ids],
            "edges": [{"from": parent, "to": child} for parent, child in job.edges],
        }

    # ------------------------------------------------------------ leasing

    def lease(
        self, wallet: str, capabilities: list[str], capability: str | None, server_url: str
    ) -> dict[str, Any] | None:
        """Lease the best pending task this node can run; None if there is none (→ 204)."""
        self.sweep()
        held = self._held_by(wallet)
        if held is not None and self._config.one_lease_per_node:
            raise conflict(f"node already holds the lease of task {held.id}")
        wanted = [capability] if capability is not None else capabilities
        candidates = [
            task
            for task in self.tasks.values()
            if task.status == "pending" and task.capability in wanted
            if task.capability in capabilities
        ]
        if not candidates:
            return None
        task = min(candidates, key=lambda found: (-found.priority, found.seq))
        self._start_lease(task, wallet, server_url)
        return self.envelope(task)

    def _held_by(self, wallet: str) -> TaskRecord | None:
        for task in self.tasks.values():
            if task.lease is not None and task.lease.wallet == wallet:
                return task
        return None

    def _start_lease(self, task: TaskRecord, wallet: str, server_url: str) -> None:
        now = self._clock.now()
        task.attempts += 1
        task.status = "leased"
        task.lease = Lease(
            wallet=wallet,
            leased_at=now,
            expires_at=now + timedelta(seconds=self._config.lease_ttl),
            grant=self._issue_grant(task, wallet, server_url),
            server_url=server_url,
        )

    def _issue_grant(self, task: TaskRecord, wallet: str, server_url: str) -> DomainGrant:
        return self._tokens.issue(
            task.domain_id, server_url, self._config.token_ttl, subject=wallet, task_id=task.id
        )

    def envelope(self, task: TaskRecord, cancel: bool = False) -> dict[str, Any]:
        """The lease envelope (§1.6) plus the heartbeat-only fields (§1.8)."""
        lease = task.lease
        return {
            "access_token": lease.grant.token if lease else None,
            "access_token_expires_at": rfc3339(lease.grant.expires_at) if lease else None,
            "lease_expires_at": rfc3339(lease.expires_at) if lease else None,
            "cancel": cancel,
            "status": task.status,
            "domain_id": task.domain_id,
            "domain_server_url": lease.server_url if lease else None,
            "task": task.spec(),
            "task_id": task.id,
            "job_id": task.job_id,
            "attempts": task.attempts,
            "max_attempts": task.max_attempts,
            "deps_remaining": task.deps_remaining,
        }

    # ------------------------------------------------------------ heartbeat and receipts

    def heartbeat(
        self, task_id: str, wallet: str, progress: Any, events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Record progress/events; extend the lease, maybe rotate the token, or deliver a cancel."""
        task, lease = self._live_lease(task_id, wallet)
        now = self._clock.now()
        rotated = not task.cancel_requested and self._needs_rotation(lease.grant, now)
        task.heartbeats.append(HeartbeatRecord(rfc3339(now), wallet, progress, events, rotated))
        if task.cancel_requested:
            return self._deliver_cancel(task)
        if rotated:
            self._revoke(lease.grant)
            lease.grant = self._issue_grant(task, wallet, lease.server_url)
        lease.expires_at = now + timedelta(seconds=self._config.lease_ttl)
        return self.envelope(task)

    def _needs_rotation(self, grant: DomainGrant, now: datetime) -> bool:
        if now >= grant.expires_at:
            return True
        policy = self._config.rotate
        if policy == "always":
            return True
        if policy == "never":
            return False
        return grant.lived_fraction(now) >= self._config.rotate_fraction

    def _deliver_cancel(self, task: TaskRecord) -> dict[str, Any]:
        task.status = "cancelled"
        response = self.envelope(task, cancel=True)
        self._end_lease(task, "cancelled")
        task.end_reason = "cancelled"
        return response

    def complete(self, task_id: str, wallet: str, body: Any) -> TaskRecord:
        """Record the complete receipt; unblock the task's dependants."""
        task = self._receipt_task(task_id, wallet)
        task.complete_body = body
        task.status = "completed"
        self._end_lease(task, "completed")
        for child_id in task.children:
            child = self.tasks[child_id]
            child.deps_remaining -= 1
            if child.deps_remaining == 0 and child.status == "waiting":
                child.status = "pending"
        return task

    def fail(self, task_id: str, wallet: str, body: Any) -> TaskRecord:
        """Record the fail receipt; the task is not retried."""
        task = self._receipt_task(task_id, wallet)
        task.fail_body = body
        task.status = "failed"
        self._end_lease(task, "failed")
        return task

    def _receipt_task(self, task_id: str, wallet: str) -> TaskRecord:
        self.sweep()
        task = self._known(task_id)
        if task.cancel_requested or task.status == "cancelled":
            raise conflict(f"task {task_id} was cancelled")
        return self._live_lease(task_id, wallet)[0]

    def _live_lease(self, task_id: str, wallet: str) -> tuple[TaskRecord, Lease]:
        """The task and its lease; 404 for an unknown task, 410 unless `wallet` holds it."""
        self.sweep()
        task = self._known(task_id)
        lease = task.lease
        if lease is None or lease.wallet != wallet:
            raise gone(f"task {task_id} has no live lease held by this node (status {task.status})")
        return task, lease

    def _known(self, task_id: str) -> TaskRecord:
        task = self.tasks.get(task_id)
        if task is None:
            raise not_found(f"unknown task {task_id}")
        return task

    # ------------------------------------------------------------ cancel and expiry

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a task: at once if nobody holds it, else with the next heartbeat."""
        self.sweep()
        task = self._known(task_id)
        if task.status in TERMINAL:
            raise conflict(f"task {task_id} is already {task.status}")
        task.cancel_requested = True
        if task.lease is None:
            task.status = "cancelled"
            task.end_reason = "cancelled before it was leased"
        return task

    def sweep(self) -> None:
        """End every lease past its expiry: back to the queue, or failed when out of attempts."""
        now = self._clock.now()
        for task in self.tasks.values():
            if task.lease is not None and now >= task.lease.expires_at:
                self._expire(task)

    def _expire(self, task: TaskRecord) -> None:
        self._end_lease(task, "expired")
        if task.cancel_requested:
            task.status, task.end_reason = "cancelled", "cancelled; lease expired before delivery"
        elif task.attempts >= task.max_attempts:
            task.status = "failed"
            task.end_reason = (
                f"lease expired; attempts used up ({task.attempts}/{task.max_attempts})"
            )
        else:
            task.status = "pending"

    def _end_lease(self, task: TaskRecord, outcome: str) -> None:
        lease = task.lease
        if lease is None:
            return
        entry = lease.to_json() | {"ended_at": rfc3339(self._clock.now()), "outcome": outcome}
        task.lease_history.append(entry)
        self._revoke(lease.grant)
        task.lease = None

    def _revoke(self, grant: DomainGrant) -> None:
        if self._config.revoke_superseded_tokens:
            self._tokens.revoke(grant.jti)


def _resolve_edge(
    edge: Edge, records: list[TaskRecord], tasks: list[TaskCreate]
) -> tuple[str, str]:
    """(parent id, child id) for an edge naming tasks by list index or unique label."""
    parent, child = _task_ref(edge.from_, records, tasks), _task_ref(edge.to, records, tasks)
    if parent == child:
        raise bad_request("an edge must join two different tasks")
    return parent, child


def _task_ref(ref: str | int, records: list[TaskRecord], tasks: list[TaskCreate]) -> str:
    if isinstance(ref, int):
        if not 0 <= ref < len(records):
            raise bad_request(f"edge names task index {ref}, but the job has {len(records)}")
        return records[ref].id
    matches = [record.id for record, task in zip(records, tasks, strict=True) if task.label == ref]
    if len(matches) != 1:
        raise bad_request(f"edge names task label {ref!r}, which {len(matches)} tasks carry")
    return matches[0]


def _reject_cycles(records: list[TaskRecord], edges: list[tuple[str, str]]) -> None:
    """400 if the edges form a cycle (Kahn's algorithm leaves some task unsorted)."""
    incoming = {record.id: 0 for record in records}
    for _, child in edges:
        incoming[child] += 1
    ready = [task_id for task_id, count in incoming.items() if count == 0]
    sorted_count = 0
    while ready:
        current = ready.pop()
        sorted_count += 1
        for parent, child in edges:
            if parent == current:
                incoming[child] -= 1
                if incoming[child] == 0:
                    ready.append(child)
    if sorted_count != len(records):
        raise bad_request("job edges form a cycle")
