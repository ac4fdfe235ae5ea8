"""Resume across node restarts, end to end (``python -m app`` + emulator + the real pipeline
child, loopback HTTP):

- the node killed with SIGKILL mid-training, restarted: its stored job is failed ``node
  restarted``, DMS hands the task out again once the lease has expired, and the restarted node
  resumes training from the last checkpoint (``resumed_from`` > 0 in the progress JSON), in
  well under the time of two full runs;
- the same for a push job: the restarted node queues it again, it waits for ``PUT
  /jobs/{id}/token`` (its token was never stored) and then resumes from the checkpoint and
  uploads its outputs to the domain server; and the same again when the node is stopped with
  SIGTERM instead (a deploy): the stopped node leaves the job ``queued`` and tells its
  ``progress_url`` it was interrupted, not cancelled;
- the node stopped with SIGTERM while it uploads the splat: the folder is kept, and the
  restarted node, leased the task again, trains nothing (the train stage resumes at its last
  step; export and previews are skipped) and completes the task;
- the node and its pipeline child both sent SIGTERM (systemd stopping the unit's whole cgroup):
  the child checkpoints and exits 143 on its own, which is an interruption, not a failure: no
  receipt, the job ``cancelled``, the folder kept; the re-leased task resumes from that step.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app import CAPABILITY
from emulator import EmulatorServer
from tests.app.e2e.conftest import StartNode
from tests.app.e2e.harness import E2E_STEPS, create_task, lease_environment, seed, wait_task
from tests.app.e2e.test_end_to_end import OUTPUTS, outputs_on_server
from tests.app.e2e.test_faults import pipeline_children, until
from tests.app.serving import ThreadedServer, progress_receiver
from tests.support.waiting import alive

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: Training steps of the kill test: long enough that training dominates a run.
KILL_STEPS = 400
#: Where the node is killed, as a fraction of the training steps.
KILL_AT = 0.85
#: A job killed at 85 % of its training steps and resumed must finish its second attempt in
#: less than this fraction of one uninterrupted run (node start-up left out): it has about 15 %
#: of the steps plus exports, previews and uploads left (0.58 measured on a loaded 2-core box);
#: without a resume it would be a whole run (1.0) again. Judging the second attempt alone keeps
#: the machine's load, which stretched the first attempt past a whole run there, from deciding.
MAX_SECOND_ATTEMPT_RATIO = 0.8
#: Training steps of the SIGTERM tests: the test sees the run halfway (it reads the latest
#: progress every 0.1 s) even when its process is descheduled for seconds; at 100 steps the run
#: could end unseen (both tests waited 300 s for "training" under load).
SIGTERM_STEPS = 400


def train_step(emulator: EmulatorServer, task_id: str) -> int:
    """The training step of the task's latest progress (0 before training)."""
    progress = emulator.state.task(task_id).progress_history
    step = progress[-1].get("step") if progress else None
    return step if isinstance(step, int) else 0


def train_events(emulator: EmulatorServer, task_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in emulator.state.task(task_id).events
        if e.get("pipeline_stage") == "train" and e.get("message", "").startswith("pipeline stage")
    ]


async def test_a_node_killed_mid_training_resumes_the_re_leased_task_from_its_checkpoint(
    emulator: EmulatorServer,
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    tmp_path: Path,
) -> None:
    scene = await seed(emulator, synthetic_scene)
    work = tmp_path / "restarted-node"
    env = {"SPLATTER_ITERATIONS": str(KILL_STEPS), **lease_environment(emulator)}
    task_id = await create_task(emulator, scene)
    node = start_node(work, **env)
    first_started = time.monotonic()  # node processes' start-up is not job time
    await until(lambda: train_step(emulator, task_id) >= KILL_AT * KILL_STEPS, 300, "training")
    (child,) = pipeline_children(node)
    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
    node.kill()  # no shutdown: the job stays "running" in the store, the child dies with it
    first_attempt_s = time.monotonic() - first_started
    await until(lambda: not alive(child), 15, "the orphaned pipeline's exit")
    marker = json.loads((work / "tasks" / task_id / ".resume.json").read_text())
    assert marker["state"] == "running"  # as the killed node left it

    node.start()  # same folders, same wallet
    second_started = time.monotonic()
    async with node.client() as client:
        record = (await client.get(f"/jobs/{job['id']}")).json()
    assert (record["state"], record["error"]) == ("failed", "node restarted")
    # DMS still counts the dead node's lease; once it expires the task is handed out again.
    emulator.state.advance_clock(emulator.state.config.lease_ttl + 1)
    task = await wait_task(emulator, task_id, node, within_s=300)
    second_attempt_s = time.monotonic() - second_started
    interrupted_total_s = first_attempt_s + second_attempt_s
    assert task.status == "completed", (task.fail_body, node.log_tail())
    assert task.attempts == 2
    resumed = {p["resumed_from"] for p in task.progress_history if "resumed_from" in p}
    (resumed_from,) = resumed  # the last periodic checkpoint: every tenth of the run
    assert KILL_AT * KILL_STEPS - KILL_STEPS // 10 <= resumed_from < KILL_STEPS
    async with node.client() as client:
        jobs = (await client.get("/jobs")).json()["data"]
    assert [(j["task_id"], j["state"]) for j in jobs] == [
        (task_id, "succeeded"), (task_id, "failed"),
    ]  # fmt: skip
    assert not (work / "tasks" / task_id).exists()  # success: the folder goes

    # The same run, uninterrupted, on the same node and machine.
    started = time.monotonic()
    baseline = await wait_task(emulator, await create_task(emulator, scene), node, within_s=300)
    full_run_s = time.monotonic() - started
    assert baseline.status == "completed", baseline.fail_body
    print(
        f"both attempts {interrupted_total_s:.1f} s (second {second_attempt_s:.1f} s), "
        f"one full run {full_run_s:.1f} s: {interrupted_total_s / full_run_s:.2f} full runs"
    )
    assert second_attempt_s / full_run_s < MAX_SECOND_ATTEMPT_RATIO


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
async def test_a_push_job_the_node_was_killed_in_waits_for_a_token_then_resumes(
    emulator: EmulatorServer,
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    tmp_path: Path,
    stop: str,
) -> None:
    received: list[dict[str, Any]] = []

    def pushed_step() -> int:
        steps = [u["progress"].get("step") for u in received]
        return max((s for s in steps if isinstance(s, int)), default=0)

    scene = await seed(emulator, synthetic_scene)
    work = tmp_path / "killed-push-node"
    env = {"SPLATTER_ITERATIONS": str(KILL_STEPS), "SPLATTER_API_TOKEN": "e2e-token"}
    node = start_node(work, **env)
    with ThreadedServer(progress_receiver(received)) as receiver:

        def envelope(task_id: str) -> dict[str, Any]:
            return {
                "access_token": emulator.state.issue_domain_token(scene.domain_id).token,
                "domain_id": scene.domain_id,
                "domain_server_url": emulator.domain_server_url,
                "task": {"id": task_id, "capability": CAPABILITY, "inputs_cids": [scene.cid]},
                "progress_url": f"{receiver.url}/progress",
            }

        task_id = "5c3e9a7b-1d2f-4e6a-8b0c-9d8e7f6a5b4c"
        async with node.client(Authorization="Bearer e2e-token") as client:
            posted = await client.post(CAPABILITY, json=envelope(task_id))
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["id"]
        first_started = time.monotonic()
        await until(lambda: pushed_step() >= KILL_AT * KILL_STEPS, 300, "training")
        (child,) = pipeline_children(node)
        if stop == "sigkill":
            node.kill()  # no shutdown: the job stays "running" in the store
        else:  # the graceful shutdown: the child checkpoints, the job stays "queued"
            assert node.stop() in (0, -signal.SIGTERM)
        first_attempt_s = time.monotonic() - first_started
        await until(lambda: not alive(child), 15, "the orphaned pipeline's exit")
        marker = json.loads((work / "tasks" / task_id / ".resume.json").read_text())
        if stop == "sigkill":
            assert marker["state"] == "running"  # as the killed node left it
        else:
            assert (marker["state"], marker["reason"]) == ("interrupted", "node shutting down")
            told = received[-1]["progress"]
            assert (told["status"], told.get("interrupted_by")) == (
                "interrupted", "node shutting down",
            )  # fmt: skip
            said = [e["stage"] for u in received for e in u["events"]]
            assert "shutdown" in said and "cancelled" not in said
        killed_at = len(received)
        requests_at_kill = len(emulator.state.request_log("domain"))

        node.start()  # same folders, same store
        second_started = time.monotonic()
        async with node.client(Authorization="Bearer e2e-token") as client:
            waiting = (await client.get(f"/jobs/{job_id}")).json()
            assert waiting["state"] == "queued", waiting
            assert waiting["progress"]["status"] == "waiting_for_token"
            await until(
                lambda: any(
                    u["progress"].get("status") == "waiting_for_token" for u in received[killed_at:]
                ),
                30,
                "the wait told to progress_url",
            )
            fresh = emulator.state.issue_domain_token(scene.domain_id)
            put = await client.put(f"/jobs/{job_id}/token", json={"access_token": fresh.token})
            assert put.status_code == 200, put.text
            job = await node.wait_job(client, job_id, within_s=300)
            second_attempt_s = time.monotonic() - second_started
            assert job["state"] == "succeeded", (job["error"], node.log_tail())
            resumed = {
                u["progress"]["resumed_from"]
                for u in received[killed_at:]
                if "resumed_from" in u["progress"]
            }
            (resumed_from,) = resumed  # the last periodic checkpoint: every tenth of the run
            assert KILL_AT * KILL_STEPS - KILL_STEPS // 10 <= resumed_from < KILL_STEPS
            assert [(a["name"], a["data_type"]) for a in job["artifacts"]] == OUTPUTS
            assert job["artifacts"] == outputs_on_server(emulator, scene)
            resumed_requests = emulator.state.request_log("domain")[requests_at_kill:]
            assert {r.headers["authorization"] for r in resumed_requests} == {
                f"Bearer {fresh.token}"
            }  # the PUT token, for every request of the resumed run
            assert {r.method for r in resumed_requests} >= {"POST"}  # the uploads
            assert not (work / "tasks" / task_id).exists()  # success: the folder goes

            # The same run, uninterrupted, on the same node and machine.
            started = time.monotonic()
            baseline = await client.post(CAPABILITY, json=envelope(str(uuid.uuid4())))
            assert baseline.status_code == 202, baseline.text
            full = await node.wait_job(client, baseline.json()["id"], within_s=300)
            full_run_s = time.monotonic() - started
            assert full["state"] == "succeeded", full["error"]
    print(
        f"push job ({stop}) resumed from step {resumed_from} of {KILL_STEPS}; both attempts "
        f"{first_attempt_s + second_attempt_s:.1f} s (second {second_attempt_s:.1f} s), "
        f"one full run {full_run_s:.1f} s: second attempt {second_attempt_s / full_run_s:.2f}"
    )
    assert second_attempt_s / full_run_s < MAX_SECOND_ATTEMPT_RATIO


async def test_a_node_stopped_during_the_upload_retrains_nothing_when_the_task_comes_back(
    emulator: EmulatorServer,
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    tmp_path: Path,
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    # The splat's upsert lookup is held for 30 s: the node is stopped while it waits.
    held = emulator.state.add_fault(
        "domain", None, delay_s=30.0, method="GET", query_contains="name=refined_splat"
    )
    work = tmp_path / "stopped-node"
    node = start_node(work, **lease_environment(emulator))
    await until(lambda: held.remaining == 0, 300, "the splat upload")
    # SIGTERM: the graceful shutdown (uvicorn re-raises the signal once it is done), not the
    # harness's SIGKILL after 30 s.
    assert node.stop() in (0, -signal.SIGTERM)
    marker = json.loads((work / "tasks" / task_id / ".resume.json").read_text())
    assert (marker["state"], marker["reason"]) == ("interrupted", "node shutting down")
    assert emulator.state.task(task_id).fail_body is None  # no receipt: DMS will re-lease
    trained_before = len(emulator.state.task(task_id).progress_history)

    node.start()
    emulator.state.advance_clock(emulator.state.config.lease_ttl + 1)
    task = await wait_task(emulator, task_id, node, within_s=300)
    assert task.status == "completed", (task.fail_body, node.log_tail())
    assert task.attempts == 2
    again = task.progress_history[trained_before:]
    assert not [p for p in again if "step" in p]  # not one training step
    (first_train, second_train) = train_events(emulator, task_id)
    assert first_train["resumed_from"] is None
    assert second_train["resumed_from"] == E2E_STEPS == second_train["steps"]
    skipped = {
        e["pipeline_stage"] for e in task.events if e.get("message") == "pipeline stage skipped"
    }
    assert skipped == {"export", "preview"}
    resumed = [e for e in task.events if e.get("message", "").startswith("resuming")]
    assert [e["interrupted_by"] for e in resumed] == ["node shutting down"]


async def test_a_cgroup_wide_sigterm_keeps_the_job_for_a_resume_instead_of_failing_it(
    emulator: EmulatorServer,
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    tmp_path: Path,
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    work = tmp_path / "cgroup-node"
    node = start_node(work, SPLATTER_ITERATIONS=str(SIGTERM_STEPS), **lease_environment(emulator))
    await until(lambda: train_step(emulator, task_id) >= SIGTERM_STEPS // 2, 300, "training")
    (child,) = pipeline_children(node)
    # What systemd's default KillMode does: SIGTERM to every process of the unit at once. The
    # child, in its own session, gets it directly, checkpoints and exits 143 by itself.
    os.kill(child, signal.SIGTERM)
    os.kill(node.pid, signal.SIGTERM)
    assert node.process is not None
    assert node.process.wait(timeout=60) in (0, -signal.SIGTERM)  # the graceful shutdown
    marker = json.loads((work / "tasks" / task_id / ".resume.json").read_text())
    assert marker["state"] == "interrupted"
    assert marker["reason"] in ("node shutting down", "pipeline stopped by SIGTERM")
    assert emulator.state.task(task_id).fail_body is None  # no receipt: DMS will re-lease

    node.start()
    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
    assert job["state"] == "cancelled", job  # an interruption, not a failure
    emulator.state.advance_clock(emulator.state.config.lease_ttl + 1)
    task = await wait_task(emulator, task_id, node, within_s=300)
    assert task.status == "completed", (task.fail_body, node.log_tail())
    resumed = {p["resumed_from"] for p in task.progress_history if "resumed_from" in p}
    (resumed_from,) = resumed  # the step the child's own SIGTERM checkpoint holds
    print(f"resumed from step {resumed_from} of {SIGTERM_STEPS}")
    assert SIGTERM_STEPS // 2 <= resumed_from < SIGTERM_STEPS


async def test_a_pipeline_sigterm_the_node_did_not_send_is_an_interruption(
    emulator: EmulatorServer,
    synthetic_scene: dict[str, Any],
    start_node: StartNode,
    tmp_path: Path,
) -> None:
    scene = await seed(emulator, synthetic_scene)
    task_id = await create_task(emulator, scene)
    work = tmp_path / "child-signalled"
    node = start_node(work, SPLATTER_ITERATIONS=str(SIGTERM_STEPS), **lease_environment(emulator))
    await until(lambda: train_step(emulator, task_id) >= SIGTERM_STEPS // 2, 300, "training")
    (child,) = pipeline_children(node)
    os.kill(child, signal.SIGTERM)  # the node keeps running
    async with node.client() as client:
        (job,) = (await client.get("/jobs")).json()["data"]
        job = await node.wait_job(client, job["id"], within_s=60)
    assert job["state"] == "cancelled", job
    assert job["error"].startswith("task interrupted: pipeline terminated by SIGTERM")
    marker = json.loads((work / "tasks" / task_id / ".resume.json").read_text())
    assert (marker["state"], marker["reason"]) == ("interrupted", "pipeline stopped by SIGTERM")
    assert emulator.state.task(task_id).fail_body is None
