"""The SQLite job store: closed states, timestamps, progress, events, artifacts, restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.records import JobSource, NewJob
from app.store import MIGRATIONS, InvalidTransitionError, JobNotFoundError, JobStore
from domain_client.models import ArtifactRecord


def new_job(task_id: str = "task-1", source: JobSource = "push") -> NewJob:
    return NewJob(
        source=source,
        task_id=task_id,
        capability="/splatter/colmap/v1",
        job_id="job-1",
        domain_id="dom-1",
        progress_url="http://127.0.0.1:1/p",
    )


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore.open(tmp_path / "data" / "jobs.sqlite3")


def test_a_new_job_is_queued_with_timestamps(store: JobStore) -> None:
    job = store.create(new_job())
    assert job.state == "queued" and job.active
    assert job.created_at.endswith("Z") and job.started_at is None and job.finished_at is None
    assert (job.task_id, job.job_id, job.domain_id) == ("task-1", "job-1", "dom-1")
    assert job.progress == {} and job.artifacts == () and job.error is None
    assert store.get(job.id) == job


def test_the_lifecycle_records_start_and_finish(store: JobStore) -> None:
    job = store.create(new_job())
    running = store.mark_running(job.id)
    assert running.state == "running" and running.started_at is not None
    done = store.finish(
        job.id,
        "succeeded",
        artifacts=[
            ArtifactRecord(logical_path="b", name="b", data_type="splat_data", id="id-b"),
            ArtifactRecord(logical_path="a", name="a", data_type="splat_preview_top", id=None),
        ],
    )
    assert done.state == "succeeded" and done.finished_at is not None and not done.active
    assert [a.logical_path for a in done.artifacts] == ["a", "b"]  # receipt order
    assert done.artifacts[0].wire() == {
        "logical_path": "a", "name": "a", "data_type": "splat_preview_top", "id": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["running", "succeeded"], "running"),
        (["cancelled"], "running"),
        (["running", "failed"], "cancelled"),
        ([], "succeeded"),
    ],
)
def test_illegal_transitions_are_refused(store: JobStore, path: list[str], target: str) -> None:
    job = store.create(new_job())
    for state in path:
        if state == "running":
            store.mark_running(job.id)
        else:
            store.finish(job.id, state)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransitionError, match="is not allowed"):
        if target == "running":
            store.mark_running(job.id)
        else:
            store.finish(job.id, target)  # type: ignore[arg-type]


def test_the_schema_refuses_states_outside_the_closed_set(store: JobStore, tmp_path: Path) -> None:
    job = store.create(new_job())
    raw = sqlite3.connect(tmp_path / "data" / "jobs.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE jobs SET state = 'paused' WHERE id = ?", (job.id,))
    raw.close()


def test_progress_is_replaced_and_events_are_appended_in_order(store: JobStore) -> None:
    job = store.create(new_job())
    store.set_progress(job.id, {"pct": 5})
    store.set_progress(job.id, {"pct": 20, "stage": "inputs"})
    assert store.get(job.id).progress == {"pct": 20, "stage": "inputs"}
    assert [store.add_event(job.id, {"message": m}) for m in ("a", "b", "c")] == [1, 2, 3]
    assert [e.event["message"] for e in store.events(job.id)] == ["a", "b", "c"]
    assert [e.seq for e in store.events(job.id, after=1)] == [2, 3]


def test_unknown_jobs_raise(store: JobStore) -> None:
    for call in (
        lambda: store.get("nope"),
        lambda: store.set_progress("nope", {}),
        lambda: store.add_event("nope", {}),
        lambda: store.mark_running("nope"),
    ):
        with pytest.raises(JobNotFoundError):
            call()
    assert store.find("nope") is None


def test_listing_counting_and_the_active_job_of_a_task(store: JobStore) -> None:
    first = store.create(new_job("t1"))
    second = store.create(new_job("t2"))
    store.mark_running(second.id)
    store.finish(first.id, "cancelled")
    assert [j.id for j in store.list_jobs()] == [second.id, first.id]
    assert [j.id for j in store.list_jobs(state="running")] == [second.id]
    assert store.count_by_state() == {
        "queued": 0, "running": 1, "succeeded": 0, "failed": 0, "cancelled": 1,
    }  # fmt: skip
    assert store.count() == 2 and store.count("cancelled") == 1
    assert store.active_for_task("t2") is not None and store.active_for_task("t1") is None


def test_jobs_survive_a_restart_and_unfinished_ones_fail_with_node_restarted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore.open(path)
    done = store.create(new_job("t-done"))
    store.mark_running(done.id)
    store.finish(done.id, "succeeded")
    running = store.create(new_job("t-run"))
    store.mark_running(running.id)
    queued = store.create(new_job("t-queued"))
    store.close()

    reopened = JobStore.open(path)
    assert sorted(reopened.recover_interrupted()) == sorted([running.id, queued.id])
    for job_key in (running.id, queued.id):
        job = reopened.get(job_key)
        assert (job.state, job.error) == ("failed", "node restarted")
        assert reopened.events(job_key)[-1].event["message"] == "node restarted"
    assert reopened.get(done.id).state == "succeeded"


def test_migrations_are_versioned_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore.open(path)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(RuntimeError, match="newer than this node"):
        JobStore.open(path)


def test_ping_reports_a_usable_database(store: JobStore) -> None:
    assert store.ping()
    store.close()
    assert not store.ping()


def test_a_v1_file_migrates_to_v2_keeping_every_event_and_artifact(tmp_path: Path) -> None:
    """v2 rebuilds the jobs table; with foreign keys on, dropping it would cascade-delete."""
    path = tmp_path / "jobs.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    raw.close()
    v1 = JobStore(sqlite3.connect(path, check_same_thread=False, isolation_level=None))
    v1._db.row_factory = sqlite3.Row
    v1._db.execute("PRAGMA foreign_keys = ON")
    job = v1.create(new_job())
    v1.add_event(job.id, {"message": "kept"})
    v1.mark_running(job.id)
    v1.finish(
        job.id,
        "succeeded",
        artifacts=[ArtifactRecord(logical_path="a", name="n", data_type="splat_data", id="i")],
    )
    v1.close()
    store = JobStore.open(path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert [e.event for e in store.events(job.id)] == [{"message": "kept"}]
    assert [a.name for a in store.get(job.id).artifacts] == ["n"]
    watch = store.create(new_job("task-2", source="watch"))
    store.add_watch_input(watch.id, "room.mp4", "sha256:abc", 1)
    assert store.watch_job_with_hash("sha256:abc") == store.get(watch.id)
    store.mark_running(watch.id)
    store.finish(watch.id, "failed", error="x")
    assert store.watch_job_with_hash("sha256:abc") is None  # a failure is no duplicate
    store.delete_finished_before("9999")
    assert store.find(watch.id) is None
    assert store._db.execute("SELECT COUNT(*) FROM watch_inputs").fetchone()[0] == 0


def test_a_restart_queues_push_jobs_again_and_fails_the_others(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore.open(path)
    pushed = store.create(new_job("t-push"), envelope={"task": {"id": "t-push"}})
    store.mark_running(pushed.id)
    waiting = store.create(new_job("t-wait"), envelope={"task": {"id": "t-wait"}})
    leased = store.create(new_job("t-lease", source="lease"))
    store.mark_running(leased.id)
    watched = store.create(new_job("t-watch", source="watch"))
    store.close()

    reopened = JobStore.open(path)
    assert reopened.recover_interrupted(requeue=("push",)) == [leased.id, watched.id]
    assert [j.id for j in reopened.queued_jobs("push")] == [pushed.id, waiting.id]  # oldest first
    again = reopened.get(pushed.id)
    assert (again.state, again.started_at, again.error) == ("queued", None, None)
    assert [e.event["message"] for e in reopened.events(pushed.id)] == [
        "node restarted; the job was running and is queued again"
    ]
    assert reopened.events(waiting.id)[-1].event["message"] == (
        "node restarted; the job was queued and is queued again"
    )
    assert reopened.push_envelope(pushed.id) == '{"task": {"id": "t-push"}}'
    assert reopened.push_envelope(leased.id) is None
    for job_key in (leased.id, watched.id):
        assert (reopened.get(job_key).state, reopened.get(job_key).error) == (
            "failed", "node restarted",
        )  # fmt: skip
    assert reopened.claim_queued(pushed.id)  # the worker can start it again


def test_fail_queued_only_fails_a_job_still_queued(store: JobStore) -> None:
    queued = store.create(new_job("t1"))
    claimed = store.create(new_job("t2"))
    assert store.claim_queued(claimed.id)
    assert store.fail_queued(queued.id, "no token")
    assert not store.fail_queued(claimed.id, "no token")
    assert (store.get(queued.id).state, store.get(queued.id).error) == ("failed", "no token")
    assert store.get(claimed.id).state == "running"


def test_a_v2_file_migrates_to_v3_keeping_its_jobs_and_stores_push_envelopes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    for version, script in enumerate(MIGRATIONS[:2], start=1):
        raw.executescript(f"BEGIN; {script}; PRAGMA user_version = {version}; COMMIT;")
    raw.close()
    v2 = JobStore(sqlite3.connect(path, check_same_thread=False, isolation_level=None))
    v2._db.row_factory = sqlite3.Row
    v2._db.execute("PRAGMA foreign_keys = ON")
    old = v2.create(new_job())  # a v2 node could not store an envelope
    v2.add_event(old.id, {"message": "kept"})
    v2.close()
    store = JobStore.open(path)
    assert store.schema_version == len(MIGRATIONS) >= 3
    assert store.get(old.id).state == "queued"
    assert [e.event for e in store.events(old.id)] == [{"message": "kept"}]
    assert store.push_envelope(old.id) is None
    new = store.create(new_job("task-2"), envelope={"domain_id": "d", "task": {"id": "task-2"}})
    assert store.push_envelope(new.id) == '{"domain_id": "d", "task": {"id": "task-2"}}'
    store.mark_running(new.id)
    store.finish(new.id, "succeeded")
    store.delete_finished_before("9999")
    assert store._db.execute("SELECT COUNT(*) FROM push_envelopes").fetchone()[0] == 0
