"""SQLite job store: job records, their events and artifacts survive a restart.

One file (stdlib ``sqlite3``, WAL journal), one connection guarded by a lock; calls are short
and made from the event loop. The schema is versioned with ``PRAGMA user_version``: each entry
of :data:`MIGRATIONS` upgrades by one version, applied in order at open.

State changes follow the closed set of :data:`app.records.JobState`; an illegal transition
(finishing a finished job, starting a cancelled one) raises :class:`InvalidTransitionError`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from app.records import (
    ALL_STATES,
    JobEvent,
    JobRecord,
    JobSource,
    JobState,
    NewJob,
    utc_now,
)
from domain_client.models import ArtifactRecord

__all__ = ["MIGRATIONS", "InvalidTransitionError", "JobNotFoundError", "JobStore"]

MIGRATIONS: tuple[str, ...] = (
    # v1: jobs, their events (append-only, numbered per job) and uploaded artifacts.
    """
    CREATE TABLE jobs (
        id           TEXT PRIMARY KEY,
        source       TEXT NOT NULL CHECK (source IN ('lease', 'push')),
        task_id      TEXT NOT NULL,
        job_id       TEXT,
        domain_id    TEXT,
        capability   TEXT NOT NULL,
        state        TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT,
        progress     TEXT NOT NULL DEFAULT '{}',
        error        TEXT,
        progress_url TEXT
    );
    CREATE INDEX jobs_by_state ON jobs (state);
    CREATE INDEX jobs_by_task ON jobs (task_id);
    CREATE TABLE job_events (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq    INTEGER NOT NULL,
        at     TEXT NOT NULL,
        event  TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE job_artifacts (
        job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        logical_path TEXT NOT NULL,
        name         TEXT NOT NULL,
        data_type    TEXT NOT NULL,
        data_id      TEXT,
        PRIMARY KEY (job_id, logical_path)
    );
    """,
    # v2: the watch door: jobs.source may be 'watch' (SQLite cannot alter a CHECK: the table is
    # rebuilt, foreign keys off, see JobStore.migrate), and each watch job's input.
    """
    CREATE TABLE jobs_v2 (
        id           TEXT PRIMARY KEY,
        source       TEXT NOT NULL CHECK (source IN ('lease', 'push', 'watch')),
        task_id      TEXT NOT NULL,
        job_id       TEXT,
        domain_id    TEXT,
        capability   TEXT NOT NULL,
        state        TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT,
        progress     TEXT NOT NULL DEFAULT '{}',
        error        TEXT,
        progress_url TEXT
    );
    INSERT INTO jobs_v2 SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v2 RENAME TO jobs;
    CREATE INDEX jobs_by_state ON jobs (state);
    CREATE INDEX jobs_by_task ON jobs (task_id);
    CREATE TABLE watch_inputs (
        job_id       TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        attempt      INTEGER NOT NULL
    );
    CREATE INDEX watch_inputs_by_hash ON watch_inputs (content_hash);
    """,
    # v3: each push job's envelope without its secrets (no access token), so that a push job
    # a restart interrupted can be queued again (JobService.resume_interrupted).
    """
    CREATE TABLE push_envelopes (
        job_id   TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
        envelope TEXT NOT NULL
    );
    """,
)

_ALLOWED: dict[JobState, tuple[JobState, ...]] = {
    "queued": ("running", "failed", "cancelled"),
    "running": ("succeeded", "failed", "cancelled"),
    "succeeded": (),
    "failed": (),
    "cancelled": (),
}


class JobNotFoundError(LookupError):
    """No job with that id."""


class InvalidTransitionError(RuntimeError):
    """A state change the closed state machine does not allow."""


class JobStore:
    """Job records in one SQLite file (``:memory:`` works for tests)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | str) -> JobStore:
        """Opens (creating folders and schema as needed) and migrates to the latest version."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL: no fsync per commit in WAL mode, so a progress write never stalls the loop.
        db.execute("PRAGMA synchronous = NORMAL")
        store = cls(db)
        store.migrate()
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Applies the migrations this file has not seen yet, each in one transaction."""
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"job store schema v{current} is newer than this node (v{len(MIGRATIONS)})"
            )
        with self._lock:
            # a migration may rebuild a table; with foreign keys on, dropping the old one would
            # cascade-delete every event and artifact (the pragma is a no-op inside BEGIN)
            self._db.execute("PRAGMA foreign_keys = OFF")
        try:
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                with self._lock:
                    self._db.executescript(
                        f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;"
                    )
        finally:
            with self._lock:
                self._db.execute("PRAGMA foreign_keys = ON")

    def ping(self) -> bool:
        """True when the database answers a query (readiness)."""
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True

    # --- creating and reading ---

    def create(self, job: NewJob, envelope: Mapping[str, Any] | None = None) -> JobRecord:
        """Stores a new ``queued`` job with a fresh id, and a push job's ``envelope`` (JSON;
        the caller leaves every secret out: :meth:`JobService.submit` drops the token)."""
        job_key = str(uuid.uuid4())
        now = utc_now()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, source, task_id, job_id, domain_id, capability, state,"
                " created_at, updated_at, progress_url) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    job_key,
                    job.source,
                    job.task_id,
                    job.job_id,
                    job.domain_id,
                    job.capability,
                    "queued",
                    now,
                    now,
                    job.progress_url,
                ),
            )
            if envelope is not None:
                db.execute(
                    "INSERT INTO push_envelopes (job_id, envelope) VALUES (?,?)",
                    (job_key, json.dumps(envelope)),
                )
        return self.get(job_key)

    def push_envelope(self, job_key: str) -> str | None:
        """The stored envelope of a push job (JSON text as :meth:`create` wrote it), if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT envelope FROM push_envelopes WHERE job_id = ?", (job_key,)
            ).fetchone()
        return None if row is None else str(row["envelope"])

    def get(self, job_key: str) -> JobRecord:
        """The job with that id; :class:`JobNotFoundError` if none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_key,)).fetchone()
            if row is None:
                raise JobNotFoundError(job_key)
            artifacts = self._artifacts(job_key)
        return _record(row, artifacts)

    def find(self, job_key: str) -> JobRecord | None:
        try:
            return self.get(job_key)
        except JobNotFoundError:
            return None

    def list_jobs(
        self, state: JobState | None = None, limit: int = 100, offset: int = 0
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally only those in ``state``."""
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [_record(r, self._artifacts(r["id"])) for r in rows]

    def count(self, state: JobState | None = None) -> int:
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM jobs {where}", params).fetchone()[0])

    def count_by_state(self) -> dict[JobState, int]:
        """Number of jobs in each state (every state present, zeros included)."""
        counts: dict[JobState, int] = dict.fromkeys(ALL_STATES, 0)
        with self._lock:
            for row in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                counts[cast(JobState, row[0])] = int(row[1])
        return counts

    def queued_jobs(self, source: JobSource) -> list[JobRecord]:
        """Every queued job from ``source``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' AND source = ?"
                " ORDER BY created_at, rowid",
                (source,),
            ).fetchall()
        return [self.get(str(row["id"])) for row in rows]

    def active_for_task(self, task_id: str) -> JobRecord | None:
        """The queued or running job for a DMS task id, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE task_id = ? AND state IN ('queued', 'running')",
                (task_id,),
            ).fetchone()
        return None if row is None else self.get(row["id"])

    def events(self, job_key: str, after: int = 0, limit: int = 1000) -> list[JobEvent]:
        """Events with ``seq > after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, event FROM job_events WHERE job_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (job_key, after, limit),
            ).fetchall()
        return [JobEvent(r["seq"], r["at"], json.loads(r["event"])) for r in rows]

    # --- updating ---

    def mark_running(self, job_key: str) -> JobRecord:
        now = utc_now()
        self._transition(job_key, "running", started_at=now)
        return self.get(job_key)

    def finish(
        self,
        job_key: str,
        state: JobState,
        error: str | None = None,
        artifacts: Iterable[ArtifactRecord] | None = None,
    ) -> JobRecord:
        """Moves a job to a terminal state, recording the error and the uploaded artifacts."""
        if artifacts is not None:
            self.set_artifacts(job_key, artifacts)
        self._transition(job_key, state, finished_at=utc_now(), error=error)
        return self.get(job_key)

    def claim_queued(self, job_key: str) -> bool:
        """``queued → running`` in one transaction; False when the job is no longer queued
        (cancelled meanwhile). The worker's only way to start a push job."""
        return self._transition_from(job_key, "queued", "running", started_at=utc_now())

    def fail_queued(self, job_key: str, error: str) -> bool:
        """``queued → failed`` in one transaction; False when the job is no longer queued."""
        return self._transition_from(
            job_key, "queued", "failed", finished_at=utc_now(), error=error
        )

    def cancel_queued(self, job_key: str, error: str) -> bool:
        """``queued → cancelled`` in one transaction; False when the job is no longer queued
        (a worker claimed it first). ``DELETE /jobs/{id}``'s way to stop a job before it runs."""
        return self._transition_from(
            job_key, "queued", "cancelled", finished_at=utc_now(), error=error
        )

    def delete_finished_before(self, cutoff: str) -> int:
        """Deletes finished jobs (with events and artifacts) whose ``finished_at`` is before
        ``cutoff`` (RFC 3339 UTC, as :func:`utc_now` writes it); returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')"
                " AND finished_at IS NOT NULL AND finished_at < ?",
                (cutoff,),
            )
            return int(cursor.rowcount)

    def add_watch_input(self, job_key: str, name: str, content_hash: str, attempt: int) -> None:
        """Records what a watch job processes (its inbox name and content hash)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO watch_inputs (job_id, name, content_hash, attempt) VALUES (?,?,?,?)",
                (job_key, name, content_hash, attempt),
            )

    def watch_job_with_hash(self, content_hash: str) -> JobRecord | None:
        """The newest queued, running or succeeded watch job over this content, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT jobs.id FROM watch_inputs JOIN jobs ON jobs.id = watch_inputs.job_id"
                " WHERE content_hash = ? AND state IN ('queued', 'running', 'succeeded')"
                " ORDER BY jobs.created_at DESC LIMIT 1",
                (content_hash,),
            ).fetchone()
        return None if row is None else self.get(row["id"])

    def set_progress(self, job_key: str, progress: dict[str, Any]) -> None:
        """Replaces the latest progress JSON (replace semantics, like a heartbeat)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ?",
                (json.dumps(progress), utc_now(), job_key),
            )
            if cursor.rowcount == 0:
                raise JobNotFoundError(job_key)

    def add_event(self, job_key: str, event: dict[str, Any]) -> int:
        """Appends one event; returns its sequence number (1, 2, ...)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?", (job_key,)
            ).fetchone()
            seq = int(row[0])
            try:
                db.execute(
                    "INSERT INTO job_events (job_id, seq, at, event) VALUES (?,?,?,?)",
                    (job_key, seq, utc_now(), json.dumps(event, default=str)),
                )
            except sqlite3.IntegrityError as exc:
                raise JobNotFoundError(job_key) from exc
        return seq

    def set_artifacts(self, job_key: str, artifacts: Iterable[ArtifactRecord]) -> None:
        """Replaces the job's artifact list."""
        with self._transaction() as db:
            db.execute("DELETE FROM job_artifacts WHERE job_id = ?", (job_key,))
            db.executemany(
                "INSERT INTO job_artifacts (job_id, logical_path, name, data_type, data_id)"
                " VALUES (?,?,?,?,?)",
                [(job_key, a.logical_path, a.name, a.data_type, a.id) for a in artifacts],
            )

    def recover_interrupted(
        self, reason: str = "node restarted", *, requeue: tuple[JobSource, ...] = ()
    ) -> list[str]:
        """Settles every job a previous process left queued or running; returns the ids of
        those it failed with ``reason``.

        Jobs of a source in ``requeue`` (the push door's) are not failed: a running one goes
        back to ``queued`` (``started_at`` cleared) with an event saying why, a queued one stays
        queued; the job service then decides whether each can run again.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, source, state FROM jobs WHERE state IN ('queued', 'running')"
                " ORDER BY created_at, rowid"
            ).fetchall()
        failed: list[str] = []
        for row in rows:
            job_key = str(row["id"])
            if row["source"] in requeue:
                self.add_event(
                    job_key,
                    {"level": "warn", "stage": "runner",
                     "message": f"{reason}; the job was {row['state']} and is queued again"},
                )  # fmt: skip
                self.requeue(job_key)
                continue
            self.add_event(job_key, {"level": "error", "stage": "runner", "message": reason})
            self.finish(job_key, "failed", error=reason)
            failed.append(job_key)
        return failed

    def requeue(self, job_key: str) -> None:
        """``running → queued`` (or leaves a queued job queued): a restart's recovery, or a push
        job the node's stop interrupted (``JobService.stop``); the job runs again from the start
        of the worker's queue (:meth:`claim_queued`)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', started_at = NULL, updated_at = ?"
                " WHERE id = ? AND state IN ('queued', 'running')",
                (utc_now(), job_key),
            )

    # --- internals ---

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _transition(self, job_key: str, target: JobState, **columns: str | None) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_key,)).fetchone()
            if row is None:
                raise JobNotFoundError(job_key)
            current = cast(JobState, row["state"])
            if target not in _ALLOWED[current]:
                raise InvalidTransitionError(f"job {job_key}: {current} -> {target} is not allowed")
            assignments = ", ".join(f"{name} = ?" for name in columns)
            db.execute(
                f"UPDATE jobs SET state = ?, updated_at = ?, {assignments} WHERE id = ?",
                (target, utc_now(), *columns.values(), job_key),
            )

    def _transition_from(
        self, job_key: str, current: JobState, target: JobState, **columns: str | None
    ) -> bool:
        assert target in _ALLOWED[current], f"{current} -> {target}"
        assignments = "".join(f", {name} = ?" for name in columns)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE jobs SET state = ?, updated_at = ?{assignments}"
                " WHERE id = ? AND state = ?",
                (target, utc_now(), *columns.values(), job_key, current),
            )
            return cursor.rowcount == 1

    def _artifacts(self, job_key: str) -> tuple[ArtifactRecord, ...]:
        rows = self._db.execute(
            "SELECT logical_path, name, data_type, data_id FROM job_artifacts"
            " WHERE job_id = ? ORDER BY logical_path",
            (job_key,),
        ).fetchall()
        return tuple(
            ArtifactRecord(logical_path=r[0], name=r[1], data_type=r[2], id=r[3]) for r in rows
        )


def _record(row: sqlite3.Row, artifacts: tuple[ArtifactRecord, ...]) -> JobRecord:
    return JobRecord(
        id=row["id"],
        source=row["source"],
        task_id=row["task_id"],
        job_id=row["job_id"],
        domain_id=row["domain_id"],
        capability=row["capability"],
        state=row["state"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        progress=json.loads(row["progress"]),
        error=row["error"],
        progress_url=row["progress_url"],
        artifacts=artifacts,
    )
