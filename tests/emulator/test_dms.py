"""DMS over real HTTP: jobs, leasing, heartbeats (rotation, cancel), receipts, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer
from tests.emulator.factories import (
    APP_TOKEN,
    CAPABILITY,
    OTHER_KEY,
    TEST_ADDRESS,
    bearer,
    create_job,
    heartbeat,
    job_body,
    jwt_claims,
    lease_task,
    node_token,
    task_body,
)
from tests.support.emulator import StartEmulator


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds_from_now(text: str) -> float:
    return (_ts(text) - datetime.now(UTC)).total_seconds()


# ---------------------------------------------------------------- jobs


def test_job_creation_returns_the_tasks(http: httpx.Client) -> None:
    domain_id = str(uuid.uuid4())
    body = job_body(domain_id, [task_body(inputs_cids=["a"], priority=3), task_body(label="b")])
    job = create_job(http, body)
    assert job["domain_id"] == domain_id and len(job["tasks"]) == 2
    first = job["tasks"][0]
    assert first["capability"] == CAPABILITY and first["inputs_cids"] == ["a"]
    assert first["status"] == "pending" and first["priority"] == 3
    assert first["job_id"] == job["id"] and uuid.UUID(first["id"])


def test_job_creation_needs_the_app_token(http: httpx.Client) -> None:
    body = job_body(str(uuid.uuid4()))
    assert http.post("/v1/jobs", json=body).status_code == 401
    wrong = http.post("/v1/jobs", json=body, headers=bearer("nope"))
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "bearer is not a valid app token"


def test_job_creation_validates_the_body(http: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (job_body("not-a-uuid"), "domain_id must be a canonical UUID"),
        (job_body(str(uuid.uuid4()), []), "tasks: List should have at least 1 item"),
        (job_body(str(uuid.uuid4()), [task_body(capability="")]), "tasks.0.capability"),
        (job_body(str(uuid.uuid4()), [task_body(max_attempts=0)]), "tasks.0.max_attempts"),
    ]
    for body, detail in cases:
        response = http.post("/v1/jobs", json=body, headers=bearer(APP_TOKEN))
        assert response.status_code == 400
        assert detail in response.json()["detail"]


def test_job_edges_hold_children_back_until_parents_complete(http: httpx.Client) -> None:
    token = node_token(http)
    body = job_body(str(uuid.uuid4()), [task_body(label="first"), task_body(label="second")])
    body["edges"] = [{"from": "first", "to": 1}]
    job = create_job(http, body)
    assert job["tasks"][1]["status"] == "waiting" and job["tasks"][1]["deps_remaining"] == 1
    lease = http.get("/v1/tasks", headers=bearer(token)).json()
    assert lease["task"]["label"] == "first"
    done = http.post(
        f"/v1/tasks/{lease['task']['id']}/complete",
        json={"output_cids": [], "meta": {}},
        headers=bearer(token),
    )
    assert done.status_code == 200
    second = http.get("/v1/tasks", headers=bearer(token)).json()
    assert second["task"]["label"] == "second" and second["task"]["deps_remaining"] == 0


def test_job_edges_are_validated(http: httpx.Client) -> None:
    tasks = [task_body(label="a"), task_body(label="b")]
    cases = [
        ([{"from": 0, "to": 5}], "edge names task index 5"),
        ([{"from": "zzz", "to": 0}], "edge names task label 'zzz'"),
        ([{"from": 0, "to": 0}], "two different tasks"),
        ([{"from": 0, "to": 1}, {"from": 1, "to": 0}], "job edges form a cycle"),
    ]
    for edges, detail in cases:
        body = job_body(str(uuid.uuid4()), tasks) | {"edges": edges}
        response = http.post("/v1/jobs", json=body, headers=bearer(APP_TOKEN))
        assert response.status_code == 400
        assert detail in response.json()["detail"]


# ---------------------------------------------------------------- leasing


def test_no_work_is_204(http: httpx.Client) -> None:
    response = http.get("/v1/tasks", headers=bearer(node_token(http)))
    assert response.status_code == 204 and response.content == b""


def test_lease_envelope(http: httpx.Client, emulator: EmulatorServer) -> None:
    leased = lease_task(http, task_body(inputs_cids=["cid-1"]))
    lease = leased.lease
    assert lease["cancel"] is False and lease["status"] == "leased"
    assert lease["domain_id"] == leased.domain_id
    assert lease["domain_server_url"] == emulator.domain_server_url
    assert 55 < _seconds_from_now(lease["lease_expires_at"]) <= 60
    assert 295 < _seconds_from_now(lease["access_token_expires_at"]) <= 301
    task = lease["task"]
    assert task["capability"] == CAPABILITY and task["inputs_cids"] == ["cid-1"]
    assert task["attempts"] == 1 and task["max_attempts"] == 3 and task["outputs_prefix"] == "out"
    assert task["status"] == "leased" and task["lease_expires_at"] == lease["lease_expires_at"]
    for decimal in ("billing_units", "estimated_credit_cost", "debited_amount"):
        assert isinstance(task[decimal], str)
    assert lease["lease_expires_at"].endswith("Z")


def test_lease_token_is_jwt_shaped(http: httpx.Client, emulator: EmulatorServer) -> None:
    leased = lease_task(http)
    segments = leased.domain_token.split(".")
    assert len(segments) == 3 and all(segments)
    claims = jwt_claims(leased.domain_token)
    assert claims["iss"] == "dds" and claims["domain_id"] == leased.domain_id
    assert claims["aud"] == [emulator.domain_server_url]
    assert claims["exp"] == int(_ts(leased.lease["access_token_expires_at"]).timestamp())


def test_node_holding_a_lease_gets_409(http: httpx.Client) -> None:
    leased = lease_task(http)
    create_job(http, job_body(leased.domain_id))
    response = http.get("/v1/tasks", headers=bearer(leased.node_token))
    assert response.status_code == 409
    assert leased.task_id in response.json()["detail"]


def test_one_lease_rule_can_be_switched_off(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(one_lease_per_node=False)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        create_job(http, job_body(leased.domain_id))
        assert http.get("/v1/tasks", headers=bearer(leased.node_token)).status_code == 200


def test_only_registered_capabilities_are_leased(http: httpx.Client) -> None:
    token = node_token(http, capabilities=["/other/v1"])
    create_job(http, job_body(str(uuid.uuid4())))
    assert http.get("/v1/tasks", headers=bearer(token)).status_code == 204


def test_capability_query_filters(http: httpx.Client) -> None:
    token = node_token(http, capabilities=[CAPABILITY, "/other/v1"])
    create_job(http, job_body(str(uuid.uuid4()), [task_body(capability="/other/v1")]))
    query = {"capability": CAPABILITY}
    assert http.get("/v1/tasks", params=query, headers=bearer(token)).status_code == 204
    query = {"capability": "/other/v1"}
    lease = http.get("/v1/tasks", params=query, headers=bearer(token)).json()
    assert lease["task"]["capability"] == "/other/v1"


def test_higher_priority_is_leased_first(http: httpx.Client) -> None:
    token = node_token(http)
    domain_id = str(uuid.uuid4())
    create_job(http, job_body(domain_id, [task_body(label="low", priority=-1)]))
    create_job(http, job_body(domain_id, [task_body(label="high", priority=5)]))
    lease = http.get("/v1/tasks", headers=bearer(token)).json()
    assert lease["task"]["label"] == "high"


@pytest.mark.parametrize("authorization", [None, "Bearer junk", "Basic abc", "Bearer"])
def test_dms_rejects_bad_bearers(http: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = http.get("/v1/tasks", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_dms_rejects_a_domain_token_as_bearer(http: httpx.Client) -> None:
    leased = lease_task(http)
    response = http.get("/v1/tasks", headers=bearer(leased.domain_token))
    assert response.status_code == 401
    assert "not a machine token" in response.json()["detail"]


# ---------------------------------------------------------------- heartbeats


def test_heartbeat_rotates_the_token_and_extends_the_lease(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="always", lease_ttl=30)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        emulator.state.advance_clock(10)
        response = heartbeat(http, leased, {"pct": 10}, [{"level": "info", "message": "hi"}])
    assert response.status_code == 200
    update = response.json()
    assert update["access_token"] != leased.domain_token
    assert jwt_claims(update["access_token"])["domain_id"] == leased.domain_id
    assert _ts(update["lease_expires_at"]) > _ts(leased.lease["lease_expires_at"])
    assert update["cancel"] is False and update["task_id"] == leased.task_id
    assert update["task"]["id"] == leased.task_id and update["attempts"] == 1
    record = emulator.state.task(leased.task_id)
    assert record.progress_history == [{"pct": 10}]
    assert record.events == [{"level": "info", "message": "hi"}]


def test_fraction_policy_rotates_only_past_the_fraction(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="fraction", rotate_fraction=0.5, token_ttl=100, lease_ttl=90)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        early = heartbeat(http, leased).json()
        emulator.state.advance_clock(51)
        late = heartbeat(http, leased).json()
    assert early["access_token"] == leased.domain_token
    assert late["access_token"] != leased.domain_token


def test_never_policy_reissues_only_an_expired_token(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="never", token_ttl=10, lease_ttl=60)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        emulator.state.advance_clock(5)
        same = heartbeat(http, leased).json()["access_token"]
        emulator.state.advance_clock(6)
        fresh = heartbeat(http, leased).json()["access_token"]
    assert same == leased.domain_token and fresh != leased.domain_token


def test_heartbeat_needs_progress(http: httpx.Client) -> None:
    leased = lease_task(http)
    response = http.post(
        f"/v1/tasks/{leased.task_id}/heartbeat",
        json={"events": []},
        headers=bearer(leased.node_token),
    )
    assert response.status_code == 400
    assert "progress: Field required" in response.json()["detail"]


def test_oversized_progress_is_413(http: httpx.Client) -> None:
    leased = lease_task(http)
    response = heartbeat(http, leased, {"blob": "x" * 70_000})
    assert response.status_code == 413
    assert "the limit is 65536" in response.json()["detail"]


def test_heartbeat_for_an_unknown_task_is_404(http: httpx.Client) -> None:
    leased = lease_task(http)
    response = http.post(
        f"/v1/tasks/{uuid.uuid4()}/heartbeat",
        json={"progress": {}, "events": []},
        headers=bearer(leased.node_token),
    )
    assert response.status_code == 404
    assert "unknown task" in response.json()["detail"]


def test_heartbeat_from_another_node_is_410(http: httpx.Client) -> None:
    leased = lease_task(http)
    other = node_token(http, key=OTHER_KEY)
    response = http.post(
        f"/v1/tasks/{leased.task_id}/heartbeat",
        json={"progress": {}, "events": []},
        headers=bearer(other),
    )
    assert response.status_code == 410
    assert "no live lease held by this node" in response.json()["detail"]


# ---------------------------------------------------------------- expiry


def test_expired_lease_goes_back_to_the_queue(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(lease_ttl=5)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        emulator.state.advance_clock(6)
        assert heartbeat(http, leased).status_code == 410
        again = http.get("/v1/tasks", headers=bearer(leased.node_token))
    assert again.status_code == 200
    assert again.json()["task"]["id"] == leased.task_id
    assert again.json()["task"]["attempts"] == 2
    history = emulator.state.task(leased.task_id).lease_history
    assert [entry["outcome"] for entry in history] == ["expired"]


def test_heartbeats_keep_a_lease_alive(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(lease_ttl=5)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        for _ in range(3):
            emulator.state.advance_clock(4)
            assert heartbeat(http, leased).status_code == 200
    assert emulator.state.task(leased.task_id).status == "leased"


def test_attempts_run_out(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(lease_ttl=5)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http, task_body(max_attempts=2))
        emulator.state.advance_clock(6)
        assert http.get("/v1/tasks", headers=bearer(leased.node_token)).status_code == 200
        emulator.state.advance_clock(6)
        assert http.get("/v1/tasks", headers=bearer(leased.node_token)).status_code == 204
    record = emulator.state.task(leased.task_id)
    assert record.status == "failed" and record.attempts == 2
    assert record.end_reason == "lease expired; attempts used up (2/2)"


# ---------------------------------------------------------------- cancel


def test_cancel_is_delivered_by_the_next_heartbeat(http: httpx.Client) -> None:
    leased = lease_task(http)
    cancelled = http.post(f"/_emulator/tasks/{leased.task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    update = heartbeat(http, leased, {"pct": 50})
    assert update.status_code == 200
    assert update.json()["cancel"] is True and update.json()["status"] == "cancelled"
    task = http.get(f"/_emulator/tasks/{leased.task_id}").json()
    assert task["status"] == "cancelled" and task["lease"] is None
    # The node is free again, and the cancelled task is gone for good.
    assert heartbeat(http, leased).status_code == 410
    assert http.get("/v1/tasks", headers=bearer(leased.node_token)).status_code == 204


def test_receipts_after_a_cancel_are_409(http: httpx.Client) -> None:
    leased = lease_task(http)
    http.post(f"/_emulator/tasks/{leased.task_id}/cancel").raise_for_status()
    response = http.post(
        f"/v1/tasks/{leased.task_id}/complete",
        json={"output_cids": [], "meta": {}},
        headers=bearer(leased.node_token),
    )
    assert response.status_code == 409
    assert "was cancelled" in response.json()["detail"]


def test_cancel_of_a_pending_task_is_immediate(http: httpx.Client) -> None:
    job = create_job(http, job_body(str(uuid.uuid4())))
    task_id = job["tasks"][0]["id"]
    assert http.post(f"/_emulator/tasks/{task_id}/cancel").json()["status"] == "cancelled"
    again = http.post(f"/_emulator/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    assert http.post(f"/_emulator/tasks/{uuid.uuid4()}/cancel").status_code == 404


# ---------------------------------------------------------------- receipts


def test_complete_is_recorded_verbatim(http: httpx.Client, emulator: EmulatorServer) -> None:
    leased = lease_task(http)
    body = {
        "output_cids": ["art-1"],
        "meta": {
            "job": {
                "task_id": leased.task_id,
                "job_id": leased.lease["task"]["job_id"],
                "domain_id": leased.domain_id,
                "capability": CAPABILITY,
            },
            "artifacts": [
                {
                    "logical_path": "out/a",
                    "name": "a",
                    "data_type": "splat_data",
                    "id": "artifact-1",
                }
            ],
        },
    }
    url = f"/v1/tasks/{leased.task_id}/complete"
    response = http.post(url, json=body, headers=bearer(leased.node_token))
    assert response.status_code == 200
    record = emulator.state.task(leased.task_id)
    assert record.status == "completed" and record.complete_body == body
    assert http.get("/v1/tasks", headers=bearer(leased.node_token)).status_code == 204
    assert http.post(url, json=body, headers=bearer(leased.node_token)).status_code == 410


def test_fail_is_recorded_verbatim(http: httpx.Client, emulator: EmulatorServer) -> None:
    leased = lease_task(http)
    body = {"reason": "runner failed: boom", "details": {"job": {}, "artifacts": []}}
    response = http.post(
        f"/v1/tasks/{leased.task_id}/fail", json=body, headers=bearer(leased.node_token)
    )
    assert response.status_code == 200
    record = emulator.state.task(leased.task_id)
    assert record.status == "failed" and record.fail_body == body


def test_fail_reason_over_4096_bytes_is_400(http: httpx.Client) -> None:
    leased = lease_task(http)
    body = {"reason": "é" * 2049, "details": None}
    response = http.post(
        f"/v1/tasks/{leased.task_id}/fail", json=body, headers=bearer(leased.node_token)
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "reason is 4098 bytes; at most 4096 are accepted"


def test_receipt_bodies_are_validated(http: httpx.Client) -> None:
    leased = lease_task(http)
    headers = bearer(leased.node_token)
    complete = http.post(f"/v1/tasks/{leased.task_id}/complete", json={"meta": {}}, headers=headers)
    assert complete.status_code == 400
    assert "output_cids: Field required" in complete.json()["detail"]
    fail = http.post(f"/v1/tasks/{leased.task_id}/fail", json={"details": {}}, headers=headers)
    assert fail.status_code == 400
    assert "reason: Field required" in fail.json()["detail"]
    raw = http.post(f"/v1/tasks/{leased.task_id}/fail", content=b"{", headers=headers)
    assert raw.status_code == 415


def test_bad_json_is_400(http: httpx.Client) -> None:
    leased = lease_task(http)
    headers = bearer(leased.node_token) | {"Content-Type": "application/json"}
    response = http.post(f"/v1/tasks/{leased.task_id}/heartbeat", content=b"{", headers=headers)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_wallet_in_lease_records(http: httpx.Client, emulator: EmulatorServer) -> None:
    leased = lease_task(http)
    lease = emulator.state.task(leased.task_id).lease
    assert lease is not None and lease.wallet == TEST_ADDRESS
