"""The `/_emulator` admin API and the fault/log middleware, over real HTTP."""

from __future__ import annotations

import time
import uuid

import httpx

from emulator import EmulatorServer
from tests.emulator.factories import (
    TEST_ADDRESS,
    bearer,
    create_job,
    heartbeat,
    job_body,
    lease_task,
    node_token,
)

DOMAIN = str(uuid.uuid4())


def test_info_names_the_service_urls(http: httpx.Client, emulator: EmulatorServer) -> None:
    info = http.get("/_emulator/info").json()
    assert info["dds_base_url"] == emulator.base_url
    assert info["dms_base_url"] == f"{emulator.base_url}/v1"
    assert info["domain_server_url"] == emulator.base_url
    assert info["registration_secret"] == "emulator-reg-secret"
    assert info["app_token"] == "emulator-app-token"
    assert info["config"]["lease_ttl"] == 60.0 and "token_secret" not in info["config"]


def test_seed_list_and_read_domain_data(http: httpx.Client, emulator: EmulatorServer) -> None:
    url = f"/_emulator/domains/{DOMAIN}/data"
    seeded = http.post(url, params={"name": "clip", "data_type": "mp4"}, content=b"\x00video")
    assert seeded.status_code == 201
    item = seeded.json()
    assert item["name"] == "clip" and item["size"] == 6
    assert http.get(url).json()["data"] == [item]
    assert http.get(f"{url}/{item['id']}").content == b"\x00video"
    # Seeding the same name and type again replaces the content, keeping the id.
    again = http.post(url, params={"name": "clip", "data_type": "mp4"}, content=b"v2").json()
    assert again["id"] == item["id"] and again["size"] == 2
    assert http.get(f"{url}/{uuid.uuid4()}").status_code == 404


def test_seed_checks_names_and_domain(http: httpx.Client) -> None:
    bad_name = http.post(
        f"/_emulator/domains/{DOMAIN}/data", params={"name": "a#b", "data_type": "t"}, content=b""
    )
    assert bad_name.status_code == 400
    assert bad_name.json()["detail"] == "name contains disallowed character '#'"
    bad_domain = http.post(
        "/_emulator/domains/nope/data", params={"name": "a", "data_type": "t"}, content=b""
    )
    assert bad_domain.status_code == 400
    missing = http.post(f"/_emulator/domains/{DOMAIN}/data", content=b"")
    assert missing.status_code == 400
    assert "query.name: Field required" in missing.json()["detail"]


def test_domain_token_endpoint(http: httpx.Client) -> None:
    response = http.post(f"/_emulator/domains/{DOMAIN}/token", json={"ttl_s": 30})
    assert response.status_code == 200
    token = response.json()["access_token"]
    listing = http.get(f"/api/v1/domains/{DOMAIN}/data", headers=bearer(token))
    assert listing.status_code == 200
    default_ttl = http.post(f"/_emulator/domains/{DOMAIN}/token")
    assert default_ttl.status_code == 200


def test_tasks_and_jobs_views(http: httpx.Client) -> None:
    leased = lease_task(http)
    heartbeat(http, leased, {"pct": 5}, [{"level": "info", "message": "a"}])
    heartbeat(http, leased, {"pct": 20}, [{"level": "info", "message": "b"}])
    task = http.get(f"/_emulator/tasks/{leased.task_id}").json()
    assert task["status"] == "leased" and task["lease"]["wallet"] == TEST_ADDRESS
    assert task["progress"] == {"pct": 20}
    assert task["progress_history"] == [{"pct": 5}, {"pct": 20}]
    assert [event["message"] for event in task["events"]] == ["a", "b"]
    assert len(task["heartbeats"]) == 2
    assert [t["id"] for t in http.get("/_emulator/tasks").json()["tasks"]] == [leased.task_id]
    jobs = http.get("/_emulator/jobs").json()["jobs"]
    assert jobs[0]["tasks"][0]["id"] == leased.task_id
    assert http.get(f"/_emulator/tasks/{uuid.uuid4()}").status_code == 404


def test_nodes_view_and_deregistration(http: httpx.Client) -> None:
    node_token(http)
    nodes = http.get("/_emulator/nodes").json()["nodes"]
    assert [node["wallet"] for node in nodes] == [TEST_ADDRESS]
    assert nodes[0]["logins"] == 1
    assert http.delete(f"/_emulator/nodes/{TEST_ADDRESS}").status_code == 204
    assert http.delete(f"/_emulator/nodes/{TEST_ADDRESS}").status_code == 404


def test_faults_fail_the_next_matching_requests(http: httpx.Client) -> None:
    armed = http.post("/_emulator/faults", json={"service": "domain", "status": 503, "count": 2})
    assert armed.status_code == 201
    assert http.get("/_emulator/faults").json()["faults"][0]["remaining"] == 2
    info = "/api/v1/info"
    first, second, third = (http.get(info) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert "injected fault" in first.json()["detail"]
    assert http.get("/_emulator/faults").json()["faults"] == []


def test_faults_match_method_and_path_and_spare_admin(http: httpx.Client) -> None:
    body = {"service": "any", "status": 500, "count": 5, "method": "POST", "path_contains": "/auth"}
    http.post("/_emulator/faults", json=body).raise_for_status()
    assert http.get("/api/v1/info").status_code == 200
    assert http.get("/_emulator/info").status_code == 200
    nonce = http.post("/internal/v1/auth/siwe/request", json={"wallet": TEST_ADDRESS})
    assert nonce.status_code == 500
    assert http.delete("/_emulator/faults").status_code == 204
    nonce = http.post("/internal/v1/auth/siwe/request", json={"wallet": TEST_ADDRESS})
    assert nonce.status_code == 200


def test_fault_on_dms_with_a_body_drains_it(http: httpx.Client) -> None:
    leased = lease_task(http)
    http.post("/_emulator/faults", json={"service": "dms", "status": 502}).raise_for_status()
    response = heartbeat(http, leased, {"big": "x" * 200_000})
    assert response.status_code == 502
    assert heartbeat(http, leased).status_code == 200


def test_delay_only_faults(http: httpx.Client) -> None:
    body = {"service": "domain", "status": None, "delay_s": 0.3}
    http.post("/_emulator/faults", json=body).raise_for_status()
    started = time.monotonic()
    response = http.get("/api/v1/info")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_validation(http: httpx.Client) -> None:
    response = http.post("/_emulator/faults", json={"service": "nope"})
    assert response.status_code == 400
    assert "service" in response.json()["detail"]


def test_python_fault_api(http: httpx.Client, emulator: EmulatorServer) -> None:
    emulator.state.add_fault("dds", status=429, count=1)
    assert http.post("/internal/v1/auth/siwe/request", json={}).status_code == 429
    emulator.state.clear_faults()
    assert emulator.state.faults.armed() == []


def test_request_log(http: httpx.Client, emulator: EmulatorServer) -> None:
    headers = {"posemesh-client-id": "splatter-node/abc", "Authorization": "Bearer t"}
    http.get(f"/api/v1/domains/{DOMAIN}/data?ids=a,b", headers=headers)
    records = http.get("/_emulator/requests", params={"service": "domain"}).json()["requests"]
    assert len(records) == 1
    record = records[0]
    assert record["method"] == "GET" and record["path"] == f"/api/v1/domains/{DOMAIN}/data"
    assert record["query"] == "ids=a,b" and record["status"] == 401
    assert record["headers"]["posemesh-client-id"] == "splatter-node/abc"
    assert record["headers"]["authorization"] == "Bearer t"
    assert [r.service for r in emulator.state.request_log("domain")] == ["domain"]
    assert http.delete("/_emulator/requests").status_code == 204
    assert emulator.state.request_log("domain") == []
    assert http.get("/_emulator/requests", params={"service": "x"}).status_code == 400


def test_clock_advance(http: httpx.Client) -> None:
    before = http.get("/_emulator/info").json()["now"]
    after = http.post("/_emulator/clock/advance", json={"seconds": 3600}).json()["now"]
    assert after[:13] != before[:13]
    backwards = http.post("/_emulator/clock/advance", json={"seconds": -1})
    assert backwards.status_code == 400


def test_cancel_via_python_api(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = node_token(http)
    job = create_job(http, job_body(DOMAIN))
    task_id = job["tasks"][0]["id"]
    assert http.get("/v1/tasks", headers=bearer(token)).status_code == 200
    assert emulator.state.cancel_task(task_id).cancel_requested
    update = http.post(
        f"/v1/tasks/{task_id}/heartbeat", json={"progress": {}, "events": []}, headers=bearer(token)
    )
    assert update.json()["cancel"] is True
    assert emulator.state.task(task_id).status == "cancelled"
