"""Push jobs across a node restart (issue #10), over real loopback HTTP with the stub pipeline.

A killed node leaves its push jobs ``queued`` or ``running`` in the store, with their envelope
but never their token, and the running one's folder marked ``running``. Each test writes that
state (as the killed node would have left it) and starts a node on it: the push jobs are queued
again and wait for ``PUT /jobs/{id}/token``; then they run in the kept folder; without a token
in ``TOKEN_WAIT_SECS``, or with an envelope that cannot run, they fail with the reason, and
their kept folder stays for ``RESUME_RETENTION_HOURS``; ``DELETE`` removes it.

A graceful stop (SIGTERM, the node's lifespan shutdown) is no worse than a kill: a push job it
interrupts (running, queued, or waiting for its token after a restart) stays ``queued``, its
``progress_url`` is told it was interrupted (never that it was cancelled), and the next start
queues it again the same way. A ``DELETE`` still ends a job for good, even one the stop reaches
before it has ended. A push job whose child a SIGTERM the node did not send stopped (systemd's
``KillMode=control-group``, an operator) is queued again at once and resumes, at most twice; a
stop that follows keeps it queued for the next start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import CAPABILITY
from app.jobs.envelope import PushLease
from app.jobs.push_job import stored_envelope
from app.records import JobRecord, NewJob
from app.runner.retention import mark_running, read_marker
from app.settings import Settings
from app.store import JobStore
from emulator import EmulatorServer
from tests.app.api.nodes import Node, running_node
from tests.app.domains import SUFFIX, emulated_scene, push_envelope, stored
from tests.app.factories import make_settings
from tests.app.serving import progress_receiver, serve
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

LATER = "2030-01-01T00:00:00Z"
KEPT = "datasets/kept-by-the-killed-run.txt"
STOPPED_KEPT = "kept-by-the-stopped-run.txt"


def killed_node_state(
    settings: Settings,
    envelope: dict[str, Any],
    *,
    state: str = "running",
    progress_url: str | None = None,
    stored_as: dict[str, Any] | None = None,
) -> JobRecord:
    """The store and job folder a node killed while it ran (or queued) this push job left."""
    lease = PushLease.model_validate(envelope)
    store = JobStore.open(settings.database_path)
    job = NewJob(
        source="push",
        task_id=lease.task.id,
        capability=CAPABILITY,
        job_id=lease.task.job_id,
        domain_id=lease.domain_id,
        progress_url=progress_url,
    )
    record = store.create(job, envelope=stored_envelope(lease) if stored_as is None else stored_as)
    if state == "running":
        store.mark_running(record.id)
        store.set_progress(record.id, {"progress": 40, "step": 400, "total": 1000})
        root = settings.tasks_root / lease.task.id
        (root / KEPT).parent.mkdir(parents=True)
        (root / KEPT).write_text("downloaded before the kill")
        mark_running(root, lease.task.id)
    store.close()
    return record


def messages(job: dict[str, Any]) -> list[str]:
    return [e["event"]["message"] for e in job["events"]]


def stored_job(settings: Settings, job_id: str) -> tuple[JobRecord, list[dict[str, Any]]]:
    """A job and its events as the stopped node left them in the store."""
    store = JobStore.open(settings.database_path)
    try:
        return store.get(job_id), [e.event for e in store.events(job_id)]
    finally:
        store.close()


def stop_note(job_id: str, queued: str, then: str) -> dict[str, Any]:
    """The event a push job the stop interrupted gets (stored and sent to its progress_url)."""
    return {
        "level": "warn",
        "stage": "shutdown",
        "message": f"interrupted: node shutting down; the job {queued}: at the next start it "
        f"waits for PUT /jobs/{job_id}/token (a push job's token is never stored), then {then}",
        "interrupted_by": "node shutting down",
    }


def told_events(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event a progress_url received (resent ones once)."""
    seen: list[dict[str, Any]] = []
    for update in received:
        seen.extend(e for e in update["events"] if e not in seen)
    return seen


async def resume_with_a_token(
    node: Node, emulator: EmulatorServer, domain_id: str, job_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """After a restart: the job as it waits, and as it ends once a fresh token is PUT."""
    waiting = await node.job(job_id)
    fresh = emulator.state.issue_domain_token(domain_id)
    put = await node.client.put(f"/jobs/{job_id}/token", json={"access_token": fresh.token})
    assert put.status_code == 200, put.text
    return waiting, await node.wait_state(job_id)


async def test_a_push_job_the_killed_node_ran_waits_for_a_token_then_runs_in_its_kept_folder(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    receiver = progress_receiver(received)
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    task_id = envelope["task"]["id"]
    settings = make_settings(tmp_path, f"require-file:{KEPT}", "write-outputs")
    async with serve(receiver) as receiver_url:
        job = killed_node_state(settings, envelope, progress_url=f"{receiver_url}/progress")
        async with running_node(settings) as node:
            waiting = await node.job(job.id)
            await eventually(
                lambda: any(u["progress"].get("status") == "waiting_for_token" for u in received)
            )
            fresh = emulator.state.issue_domain_token(scene.domain_id)
            grant = {"access_token": fresh.token, "access_token_expires_at": LATER}
            put = await node.client.put(f"/jobs/{job.id}/token", json=grant)
            done = await node.wait_state(job.id)
            await eventually(lambda: received[-1]["progress"].get("progress") == 100)

    assert waiting["state"] == "queued"
    assert waiting["progress"] == {
        "progress": 40, "step": 400, "total": 1000,  # what the killed run had reported
        "status": "waiting_for_token", "token_wait_s": 300.0,
    }  # fmt: skip
    assert messages(waiting)[-2:] == [
        "node restarted; the job was running and is queued again",
        "the node restarted and a push job's domain token is never stored; waiting up to 300 s "
        f"for PUT /jobs/{job.id}/token",
    ]
    assert put.status_code == 200, put.text
    assert done["state"] == "succeeded", done["error"]
    said = messages(done)
    assert said.index("domain token replaced") < said.index("new domain token received")
    assert said.index("new domain token received") < said.index(
        "resuming in the job folder kept from an earlier run"
    )
    (resumed,) = [e["event"] for e in done["events"] if e["event"]["message"].startswith("resum")]
    assert resumed["interrupted_by"] == "node restarted"  # the killed run's folder
    assert stored(emulator, scene.domain_id)[(f"refined_splat{SUFFIX}", "splat_data")]
    domain = emulator.state.request_log("domain")
    assert {r.headers["authorization"] for r in domain} == {f"Bearer {fresh.token}"}
    assert not (settings.tasks_root / task_id).exists()  # success: the folder goes


async def test_a_queued_push_job_comes_back_queued_and_without_a_token_fails_keeping_folders(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "write-outputs", token_wait_secs=0.3)
    ran = push_envelope(emulator, scene)
    running = killed_node_state(settings, ran)
    queued = killed_node_state(settings, push_envelope(emulator, scene), state="queued")
    async with running_node(settings) as node:
        first = await node.wait_state(running.id)
        second = await node.wait_state(queued.id)
    reason = (
        "node restarted: no domain token arrived within 0.3 s (TOKEN_WAIT_SECS); a push job's "
        "token is never stored, so after a restart the job waits for PUT /jobs/{id}/token"
    )
    assert (first["state"], first["error"]) == ("failed", reason)
    assert (second["state"], second["error"]) == ("failed", reason)
    assert messages(second)[0] == "node restarted; the job was queued and is queued again"
    marker = read_marker(settings.tasks_root / ran["task"]["id"])
    assert marker is not None and (marker.state, marker.reason) == ("interrupted", "node restarted")
    assert emulator.state.request_log("domain") == []  # nothing ran


async def test_a_repost_is_told_to_put_a_token_and_a_cancel_while_it_waits_removes_the_folder(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "write-outputs")
    envelope = push_envelope(emulator, scene)
    job = killed_node_state(settings, envelope)
    async with running_node(settings) as node:
        again = await node.client.post(CAPABILITY, json=envelope)
        cancel = await node.client.delete(f"/jobs/{job.id}")
        done = await node.wait_state(job.id)
        put = await node.client.put(f"/jobs/{job.id}/token", json={"access_token": "late"})
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"task {envelope['task']['id']} is already queued as job {job.id}; it waits for a "
        "domain token after a node restart: PUT /jobs/{id}/token",
    )
    assert cancel.status_code == 202, cancel.text
    assert (done["state"], done["error"]) == (
        "cancelled", "cancelled while waiting for a domain token",
    )  # fmt: skip
    assert not (settings.tasks_root / envelope["task"]["id"]).exists()
    assert put.status_code == 409


async def test_push_jobs_waiting_for_a_token_count_toward_splatter_max_queued(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "write-outputs", splatter_max_queued=1)
    killed_node_state(settings, push_envelope(emulator, scene))
    async with running_node(settings) as node:
        refused = await node.client.post(CAPABILITY, json=push_envelope(emulator, scene))
    assert refused.status_code == 429, refused.text


@pytest.mark.parametrize(
    ("stored_as", "reason"),
    [
        ({}, "node restarted: the stored envelope cannot be read (task: Field required; "
             "domain_id: Field required; domain_server_url: Field required); push the task again"),
        ({"lease_expires_at": "2021-01-01T00:00:00Z"},
         "node restarted: the pushed lease expired at 2021-01-01T00:00:00Z (lease_expires_at); "
         "push the task again with a fresh lease"),
        ({"domain_server_url": "http://10.1.2.3:8080"},
         "node restarted: domain_server_url host 10.1.2.3 is a private address; "),
        ({"task": {"id": "9e1f6b0a-7a0c-4b7e-8c6f-0f1d2c3b4a59", "capability": CAPABILITY}},
         "node restarted: the stored envelope names another task; push the task again"),
    ],
)  # fmt: skip
async def test_a_stored_envelope_that_cannot_run_fails_the_job_at_start_up(
    tmp_path: Path, emulator: EmulatorServer, stored_as: dict[str, Any], reason: str
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, "write-outputs")
    envelope = push_envelope(emulator, scene)
    whole = stored_envelope(PushLease.model_validate(envelope))
    kept = {**whole, **stored_as} if stored_as else {}  # {}: nothing the node can read
    job = killed_node_state(settings, envelope, stored_as=kept)
    async with running_node(settings) as node:
        done = await node.job(job.id)
    assert done["state"] == "failed"
    assert done["error"].startswith(reason)
    assert messages(done)[-1] == done["error"]
    assert (settings.tasks_root / envelope["task"]["id"]).is_dir()  # left to its retention


async def test_a_push_job_without_a_stored_envelope_and_lease_jobs_fail_node_restarted(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    store = JobStore.open(settings.database_path)
    task = "4f0b8c1e-2d3a-4b5c-8d7e-6f5a4b3c2d1e"
    old = store.create(NewJob(source="push", task_id=task, capability=CAPABILITY))
    leased = store.create(NewJob(source="lease", task_id=task, capability=CAPABILITY))
    store.mark_running(leased.id)
    store.close()
    async with running_node(settings) as node:
        old_job, lease_job = await node.job(old.id), await node.job(leased.id)
    assert (old_job["state"], old_job["error"]) == (
        "failed",
        "node restarted: the job's envelope was not stored (queued by an older node); "
        "push the task again",
    )
    assert (lease_job["state"], lease_job["error"]) == ("failed", "node restarted")


async def test_the_domain_token_is_never_written_to_the_database(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    started, go = tmp_path / "started", tmp_path / "go"
    settings = make_settings(tmp_path, f"touch:{started}", f"wait-file:{go}", "write-outputs")
    envelope = push_envelope(emulator, scene)
    async with running_node(settings) as node:
        job = await node.push(envelope)
        await eventually(started.exists)
        fresh = emulator.state.issue_domain_token(scene.domain_id)
        put = await node.client.put(f"/jobs/{job['id']}/token", json={"access_token": fresh.token})
        assert put.status_code == 200, put.text
        while_running = database_bytes(settings)
        go.touch()
        done = await node.wait_state(job["id"])
    assert done["state"] == "succeeded", done["error"]
    store = JobStore.open(settings.database_path)
    kept = json.loads(store.push_envelope(job["id"]) or "{}")
    store.close()
    assert kept["task"]["id"] == envelope["task"]["id"]  # the envelope is stored ...
    assert "access_token" not in kept and "access_token_expires_at" not in kept
    for data in (while_running, database_bytes(settings)):
        assert envelope["task"]["id"].encode() in data
        for token in (envelope["access_token"], fresh.token):
            assert token.encode() not in data  # ... never its tokens


def database_bytes(settings: Settings) -> bytes:
    """Every byte of the store: the database file, its WAL and shared-memory index."""
    files = sorted(settings.splatter_data_dir.glob("jobs.sqlite3*"))
    assert files
    return b"".join(path.read_bytes() for path in files)


async def test_a_push_job_running_at_a_graceful_stop_stays_queued_and_resumes_after_the_restart(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    task_id = envelope["task"]["id"]
    started = tmp_path / "started"
    # the first run writes a file, then trains until the stop; the second needs that file
    settings = make_settings(
        tmp_path,
        f"once:{tmp_path / 'wrote'}=write:{STOPPED_KEPT}=written before the stop",
        f"touch:{started}",
        f"once:{tmp_path / 'trained'}=train-forever",
        f"require-file:{STOPPED_KEPT}",
        "write-outputs",
    )
    async with serve(progress_receiver(received)) as receiver_url:
        async with running_node(settings) as node:
            job = await node.push({**envelope, "progress_url": f"{receiver_url}/progress"})
            await eventually(started.exists)
        stopped, stopped_events = stored_job(settings, job["id"])
        told = list(received)
        marker = read_marker(settings.tasks_root / task_id)
        async with running_node(settings) as node:
            waiting, done = await resume_with_a_token(node, emulator, scene.domain_id, job["id"])

    note = stop_note(job["id"], "is queued again", "resumes in its kept job folder")
    assert (stopped.state, stopped.error, stopped.started_at) == ("queued", None, None)
    assert stopped.progress["status"] == "interrupted"
    assert stopped.progress["interrupted_by"] == "node shutting down"
    assert stopped_events[-1] == note
    assert not [e for e in stopped_events if e["stage"] == "cancelled"]
    assert marker is not None and (marker.state, marker.reason) == (
        "interrupted", "node shutting down",
    )  # fmt: skip
    # the progress_url hears that the job will resume, never that it was cancelled
    assert told[-1]["progress"] == stopped.progress
    assert told_events(told)[-1] == note
    assert not [e for e in told_events(told) if e["stage"] == "cancelled"]
    assert told[-1]["progress"]["status"] != "cancelled"
    # the next start treats it as after a kill: it waits for a token, then resumes
    assert waiting["state"] == "queued"
    assert waiting["progress"]["status"] == "waiting_for_token"
    assert messages(waiting)[-2] == "node restarted; the job was queued and is queued again"
    assert done["state"] == "succeeded", done["error"]
    (resumed,) = [e["event"] for e in done["events"] if e["event"]["message"].startswith("resum")]
    assert resumed["interrupted_by"] == "node shutting down"  # the stopped run's folder
    assert stored(emulator, scene.domain_id)[(f"refined_splat{SUFFIX}", "splat_data")]
    assert not (settings.tasks_root / task_id).exists()  # success: the folder goes


async def test_a_push_job_queued_at_a_graceful_stop_stays_queued_and_runs_after_the_restart(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    scene = emulated_scene(emulator)
    started = tmp_path / "started"
    settings = make_settings(tmp_path, f"touch:{started}", "train-forever")
    async with serve(progress_receiver(received)) as receiver_url:
        async with running_node(settings) as node:
            running = await node.push(push_envelope(emulator, scene))
            await eventually(started.exists)
            envelope = {
                **push_envelope(emulator, scene),
                "progress_url": f"{receiver_url}/progress",
            }
            queued = await node.push(envelope)
        stopped, stopped_events = stored_job(settings, queued["id"])
        was_running, _ = stored_job(settings, running["id"])
        told = list(received)
        async with running_node(make_settings(tmp_path, "write-outputs")) as node:
            waiting, done = await resume_with_a_token(node, emulator, scene.domain_id, queued["id"])
            other = await node.job(running["id"])

    note = stop_note(queued["id"], "stays queued", "runs")
    assert (stopped.state, stopped.error) == ("queued", None)
    assert stopped_events[-1] == note
    assert stopped.progress == {"status": "interrupted", "interrupted_by": "node shutting down"}
    assert (told[-1]["progress"], told_events(told)) == (stopped.progress, [note])
    assert was_running.state == "queued"
    assert waiting["state"] == "queued"
    assert waiting["progress"]["status"] == "waiting_for_token"
    assert done["state"] == "succeeded", done["error"]
    assert (other["state"], other["progress"]["status"]) == ("queued", "waiting_for_token")


async def test_a_push_job_waiting_for_its_token_at_a_graceful_stop_waits_again_after_the_next(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    settings = make_settings(tmp_path, f"require-file:{KEPT}", "write-outputs")

    def said(status: str) -> Callable[[], bool]:
        return lambda: any(u["progress"].get("status") == status for u in received)

    async with serve(progress_receiver(received)) as receiver_url:
        job = killed_node_state(settings, envelope, progress_url=f"{receiver_url}/progress")
        async with running_node(settings) as node:  # restarted after the kill ...
            await eventually(said("waiting_for_token"))
        # ... and stopped again before anyone PUT a token
        stopped, stopped_events = stored_job(settings, job.id)
        told = list(received)
        received.clear()
        async with running_node(settings) as node:
            await eventually(said("waiting_for_token"))
            waiting, done = await resume_with_a_token(node, emulator, scene.domain_id, job.id)

    note = stop_note(job.id, "stays queued", "resumes in its kept job folder")
    assert (stopped.state, stopped.error) == ("queued", None)
    assert stopped_events[-1] == note
    assert stopped.progress == {
        "progress": 40, "step": 400, "total": 1000,  # what the killed run had reported
        "status": "interrupted", "interrupted_by": "node shutting down",
    }  # fmt: skip
    assert told[-1]["progress"] == stopped.progress
    assert told_events(told)[-1] == note
    assert waiting["state"] == "queued"
    assert waiting["progress"]["status"] == "waiting_for_token"
    assert done["state"] == "succeeded", done["error"]
    (resumed,) = [e["event"] for e in done["events"] if e["event"]["message"].startswith("resum")]
    assert resumed["interrupted_by"] == "node restarted"  # the killed run's folder, still kept
    assert not (settings.tasks_root / envelope["task"]["id"]).exists()


async def test_a_delete_the_stop_overtakes_still_cancels_the_push_job_for_good(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    started, go = tmp_path / "started", tmp_path / "go"
    # the child ignores the DELETE's SIGTERM until the node has begun to stop
    settings = make_settings(
        tmp_path,
        "ignore-sigterm",
        f"touch:{started}",
        f"wait-file:{go}",
        "write-outputs",
        cancel_grace_secs=60.0,
    )
    async with running_node(settings) as node:
        job = await node.push(envelope)
        await eventually(started.exists)
        cancel = await node.client.delete(f"/jobs/{job['id']}")
        supervisor = node.app.state.services.supervisor

        async def release_when_stopping() -> None:
            await eventually(lambda: supervisor.stopping, within_s=30.0)
            go.touch()

        release = asyncio.create_task(release_when_stopping())
    await release
    record, _ = stored_job(settings, job["id"])
    assert cancel.status_code == 202, cancel.text
    assert (record.state, record.error) == ("cancelled", "task cancelled: python execution")
    assert not (settings.tasks_root / envelope["task"]["id"]).exists()  # ended for good


async def test_a_restored_job_given_its_token_shows_queued_until_the_worker_takes_it(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    settings = make_settings(tmp_path, f"require-file:{KEPT}", "write-outputs")
    job = killed_node_state(settings, push_envelope(emulator, scene))
    async with running_node(settings) as node:
        services = node.app.state.services
        async with services.supervisor.slot:  # as a leased task holds the only slot
            fresh = emulator.state.issue_domain_token(scene.domain_id)
            put = await node.client.put(f"/jobs/{job.id}/token", json={"access_token": fresh.token})
            await eventually(lambda: services.store.get(job.id).progress.get("status") == "queued")
            given = await node.job(job.id)
        done = await node.wait_state(job.id)
    assert put.status_code == 200, put.text
    assert given["state"] == "queued"
    assert given["progress"] == {"progress": 40, "step": 400, "total": 1000, "status": "queued"}
    assert done["state"] == "succeeded", done["error"]


def requeue_note(attempt: int) -> dict[str, Any]:
    """The event a push job gets when a SIGTERM the node did not send stopped its child."""
    return {
        "level": "warn",
        "stage": "runner",
        "message": "pipeline stopped by a SIGTERM the node did not send; queued again to resume "
        f"from its checkpoint (attempt {attempt} of 2)",
        "interrupted_by": "pipeline stopped by SIGTERM",
    }


async def test_a_push_job_whose_child_a_foreign_sigterm_stopped_is_queued_again_and_resumes(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    # the first run writes a file, then gets a SIGTERM the node did not send (systemd's
    # KillMode=control-group, an operator); the second run needs that file
    settings = make_settings(
        tmp_path,
        f"once:{tmp_path / 'wrote'}=write:{STOPPED_KEPT}=written before the SIGTERM",
        f"once:{tmp_path / 'sigterm'}=kill-self:TERM",
        f"require-file:{STOPPED_KEPT}",
        "write-outputs",
    )
    async with serve(progress_receiver(received)) as receiver_url, running_node(settings) as node:
        job = await node.push({**envelope, "progress_url": f"{receiver_url}/progress"})
        done = await node.wait_state(job["id"])
        await eventually(lambda: received[-1]["progress"].get("progress") == 100)

    assert done["state"] == "succeeded", done["error"]
    said = [e["event"] for e in done["events"]]
    assert requeue_note(1) in said and requeue_note(2) not in said
    assert requeue_note(1) in told_events(received)  # the progress_url hears it too
    assert not [e for e in said if e["stage"] == "cancelled"]
    (resumed,) = [e for e in said if e["message"].startswith("resum")]
    assert said.index(requeue_note(1)) < said.index(resumed)
    assert resumed["interrupted_by"] == "pipeline stopped by SIGTERM"  # the first run's folder
    assert stored(emulator, scene.domain_id)[(f"refined_splat{SUFFIX}", "splat_data")]
    assert not (settings.tasks_root / envelope["task"]["id"]).exists()  # success: the folder goes


async def test_a_push_job_whose_child_is_always_sigtermed_is_cancelled_after_two_requeues(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    settings = make_settings(
        tmp_path, "write:checkpoints/step_000010.pt=kept", "kill-self:TERM", "write-outputs"
    )
    async with running_node(settings) as node:
        job = await node.push(envelope)
        done = await node.wait_state(job["id"])

    assert done["state"] == "cancelled"
    assert done["error"].startswith("task interrupted: pipeline ")
    said = [e["event"] for e in done["events"]]
    assert [e for e in said if e["message"].startswith("pipeline stopped by a SIGTERM")] == [
        requeue_note(1),
        requeue_note(2),
    ]
    assert said[-1]["stage"] == "cancelled"  # the third stop is recorded as before
    kept = settings.tasks_root / envelope["task"]["id"]
    assert (kept / "checkpoints" / "step_000010.pt").read_text() == "kept"
    marker = read_marker(kept)
    assert marker is not None and marker.reason == "pipeline stopped by SIGTERM"


def requeued_behind_a_second_job(tmp_path: Path, go: Path, started: Path) -> Settings:
    """Stub settings: the first job's run writes a file, waits for ``go`` (touched once the
    second job is queued), then gets a foreign SIGTERM; queued again behind the second job,
    which touches ``started`` and trains until the stop, it is still queued when the stop
    begins (as when systemd signals the node and the child at once)."""
    return make_settings(
        tmp_path,
        f"once:{tmp_path / 'wrote'}=write:{STOPPED_KEPT}=written before the SIGTERM",
        f"once:{tmp_path / 'waited'}=wait-file:{go}",
        f"once:{tmp_path / 'sigterm'}=kill-self:TERM",
        f"touch:{started}",
        "train-forever",
    )


async def test_a_push_job_queued_again_after_a_foreign_sigterm_stays_queued_at_a_graceful_stop(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    received: list[dict[str, Any]] = []
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    task_id = envelope["task"]["id"]
    go, started = tmp_path / "go", tmp_path / "started"
    settings = requeued_behind_a_second_job(tmp_path, go, started)
    async with serve(progress_receiver(received)) as receiver_url:
        async with running_node(settings) as node:
            job = await node.push({**envelope, "progress_url": f"{receiver_url}/progress"})
            await node.push(push_envelope(emulator, scene))
            go.touch()
            await eventually(started.exists)  # the second job runs: the first is queued again
        stopped, stopped_events = stored_job(settings, job["id"])
        told = list(received)
        resumed_settings = make_settings(tmp_path, f"require-file:{STOPPED_KEPT}", "write-outputs")
        async with running_node(resumed_settings) as node:
            waiting, done = await resume_with_a_token(node, emulator, scene.domain_id, job["id"])

    note = stop_note(job["id"], "stays queued", "resumes in its kept job folder")
    assert (stopped.state, stopped.error) == ("queued", None)
    assert stopped.progress["status"] == "interrupted"
    assert stopped_events[-2:] == [requeue_note(1), note]
    assert not [e for e in stopped_events if e["stage"] == "cancelled"]
    assert told[-1]["progress"] == stopped.progress
    assert told_events(told)[-2:] == [requeue_note(1), note]
    assert waiting["state"] == "queued"
    assert waiting["progress"]["status"] == "waiting_for_token"
    assert done["state"] == "succeeded", done["error"]
    (resumed,) = [e["event"] for e in done["events"] if e["event"]["message"].startswith("resum")]
    assert resumed["interrupted_by"] == "pipeline stopped by SIGTERM"
    assert not (settings.tasks_root / task_id).exists()


async def test_a_delete_of_a_push_job_queued_again_after_a_foreign_sigterm_removes_its_folder(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    scene = emulated_scene(emulator)
    envelope = push_envelope(emulator, scene)
    go, started = tmp_path / "go", tmp_path / "started"
    settings = requeued_behind_a_second_job(tmp_path, go, started)
    async with running_node(settings) as node:
        job = await node.push(envelope)
        await node.push(push_envelope(emulator, scene))
        go.touch()
        await eventually(started.exists)
        kept = (settings.tasks_root / envelope["task"]["id"] / STOPPED_KEPT).is_file()
        cancel = await node.client.delete(f"/jobs/{job['id']}")
        done = await node.wait_state(job["id"])
    assert kept  # the interrupted run's folder, kept for the resume
    assert cancel.status_code == 202, cancel.text
    assert (done["state"], done["error"]) == ("cancelled", "cancelled before it started")
    assert not (settings.tasks_root / envelope["task"]["id"]).exists()  # ended for good
