"""Protocol §4.1–4.2: the DMS client's wire shape and URL building (cases 1, 2), plus the
status table of §1.11."""

from __future__ import annotations

import httpx
import pytest
import respx

from domain_client import (
    ArtifactRecord,
    CompleteBody,
    DmsClient,
    FailBody,
    JobMeta,
    LeaseLost,
    ServerError,
    StaticTokenSource,
)
from domain_client.dms import DmsPaths
from tests.domain_client.factories import BASE, CAPABILITY, lease_body, new_id

pytestmark = pytest.mark.anyio

NULL_TASK_FIELDS = [
    "job_id",
    "outputs_prefix",
    "label",
    "stage",
    "priority",
    "attempts",
    "max_attempts",
    "deps_remaining",
    "status",
    "mode",
    "organization_filter",
    "billing_units",
    "estimated_credit_cost",
    "debited_amount",
    "debited_at",
    "lease_expires_at",
]


def dms_client(http: httpx.AsyncClient, token: str = "node-abc", base: str = BASE) -> DmsClient:
    return DmsClient(http, base, StaticTokenSource(token))


async def test_case_01_lease_complete_fail_wire_shape(http: httpx.AsyncClient) -> None:
    task_id = new_id()
    body = lease_body(task_id=task_id, status="leased")
    body["task"].update({name: None for name in NULL_TASK_FIELDS})
    body["task"].update(capability_filters={}, meta={}, inputs_cids=None)
    bearer = {"authorization": "Bearer node-abc"}
    with respx.mock(base_url=BASE) as mock:
        lease_route = mock.get("/tasks", headers=bearer).respond(200, json=body)
        complete_route = mock.post(
            f"/tasks/{task_id}/complete", headers={**bearer, "content-type": "application/json"}
        ).respond(200)
        fail_route = mock.post(
            f"/tasks/{task_id}/fail", headers=bearer, json={"reason": "e", "details": {}}
        ).respond(200)
        dms = dms_client(http)

        lease = await dms.lease()
        assert lease is not None
        assert (lease.task.id, lease.task.capability) == (task_id, CAPABILITY)
        assert lease.task.inputs_cids == [] and lease.task.job_id is None
        assert lease.task.capability_filters == {} and lease.status == "leased"
        job = JobMeta(
            task_id=task_id, job_id=None, domain_id=lease.domain_id, capability=CAPABILITY
        )
        await dms.complete(task_id, CompleteBody.for_artifacts(job, []))
        await dms.fail(task_id, FailBody(reason="e", details={}))

    assert (lease_route.call_count, complete_route.call_count, fail_route.call_count) == (1, 1, 1)


async def test_case_02_dms_url_building(http: httpx.AsyncClient) -> None:
    paths = DmsPaths("https://dms.example")
    assert httpx.URL(paths.tasks()).path == "/tasks"
    for action in ("heartbeat", "complete", "fail"):
        assert httpx.URL(paths.task("t1", action)).path == f"/tasks/t1/{action}"
    assert httpx.URL(DmsPaths("https://dms.example/v1").tasks()).path == "/v1/tasks"
    assert httpx.URL(DmsPaths("https://dms.example/v1/").task("t1", "fail")).path == (
        "/v1/tasks/t1/fail"
    )
    with respx.mock() as mock:
        route = mock.get("https://dms.example/v1/tasks").respond(204)
        dms = dms_client(http, base="https://dms.example/v1/")
        assert await dms.lease() is None
        assert await dms.lease(capability=CAPABILITY) is None
    plain, with_capability = (call.request.url for call in route.calls)
    assert plain.path == "/v1/tasks" and plain.query == b""
    assert with_capability.path == "/v1/tasks"
    assert with_capability.params["capability"] == CAPABILITY


@pytest.mark.parametrize("status", [204, 409])
async def test_lease_no_work_statuses(http: httpx.AsyncClient, status: int) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(status)
        assert await dms_client(http).lease() is None


async def test_lease_401_refreshes_token_and_replays_once(http: httpx.AsyncClient) -> None:
    auth = StaticTokenSource("old")
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks", headers={"authorization": "Bearer old"}).respond(401)
        fresh = mock.get("/tasks", headers={"authorization": "Bearer new"}).respond(204)
        original = auth.invalidate

        def rotate(token: str) -> None:
            original(token)
            auth.set("new")

        auth.invalidate = rotate  # type: ignore[method-assign]
        assert await DmsClient(http, BASE, auth).lease() is None
    assert auth.invalidated == ["old"] and fresh.call_count == 1


async def test_lease_second_401_is_an_error(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/tasks").respond(401)
        with pytest.raises(Exception, match=r"unauthorized \(401\)"):
            await dms_client(http).lease()
    assert route.call_count == 2


async def test_lease_undecodable_body_is_a_protocol_violation(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, text="<html>")
        with pytest.raises(Exception, match="not valid JSON"):
            await dms_client(http).lease()


async def test_lease_capability_mismatch_is_rejected(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, json=lease_body(capability="/other/v1"))
        with pytest.raises(Exception, match="claim capability mismatch"):
            await dms_client(http).lease(capability=CAPABILITY)


async def test_lease_response_over_2_mib_is_refused(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/tasks").respond(200, content=b" " * (2 * 1024 * 1024 + 1))
        with pytest.raises(Exception, match="exceeds 2097152 bytes"):
            await dms_client(http).lease()


@pytest.mark.parametrize(
    ("status", "body"), [(204, b""), (409, b"{}"), (404, b"{}"), (500, b"{}"), (200, b"[]")]
)
async def test_heartbeat_failures_are_lost_lease(
    http: httpx.AsyncClient, status: int, body: bytes
) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post("/tasks/t1/heartbeat").respond(status, content=body)
        with pytest.raises(LeaseLost, match="lease lost: heartbeat failed"):
            await dms_client(http).heartbeat("t1", {}, [])


async def test_heartbeat_refuses_progress_over_64_kib(http: httpx.AsyncClient) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        route = mock.post("/tasks/t1/heartbeat").respond(200, json={})
        with pytest.raises(ValueError, match="limit is 65536"):
            await dms_client(http).heartbeat("t1", {"blob": "x" * 70_000}, [])
    assert route.call_count == 0


async def test_complete_accepts_any_2xx_and_maps_errors(http: httpx.AsyncClient) -> None:
    job = JobMeta(task_id="t1", job_id=None, domain_id=None, capability=CAPABILITY)
    record = ArtifactRecord(logical_path="a", name="a", data_type="json", id=None)
    body = CompleteBody.for_artifacts(job, [record])
    assert body.output_cids == []  # an artifact without id has no output cid
    with respx.mock(base_url=BASE) as mock:
        mock.post("/tasks/t1/complete").respond(204)
        mock.post("/tasks/t2/complete").respond(503)
        await dms_client(http).complete("t1", body)
        with pytest.raises(ServerError, match=r"^server error \(503\)$"):
            await dms_client(http).complete("t2", body)


class RotatingSource(StaticTokenSource):
    """A DDS token source whose ``invalidate`` logs in again (a fresh token ``new``)."""

    def invalidate(self, token: str) -> None:
        super().invalidate(token)
        self.set("new")


async def test_heartbeat_401_refreshes_and_replays_once(http: httpx.AsyncClient) -> None:
    # protocol §1.11, heartbeat row: 401 → refresh + replay once with the fresh token
    auth = RotatingSource("old")
    with respx.mock(base_url=BASE) as mock:
        mock.post("/tasks/t1/heartbeat", headers={"authorization": "Bearer old"}).respond(401)
        fresh = mock.post("/tasks/t1/heartbeat", headers={"authorization": "Bearer new"})
        fresh.respond(200, json={"access_token": "rotated"})
        update = await DmsClient(http, BASE, auth).heartbeat("t1", {"pct": 5}, [])
    assert update.access_token == "rotated" and auth.invalidated == ["old"]
    assert fresh.call_count == 1


async def test_heartbeat_replay_answering_401_again_is_a_lost_lease(
    http: httpx.AsyncClient,
) -> None:
    # protocol §1.11: "if the replay is also 401 it is handled as ... lost lease for heartbeats"
    with respx.mock(base_url=BASE) as mock:
        route = mock.post("/tasks/t1/heartbeat").respond(401)
        with pytest.raises(LeaseLost, match=r"unauthorized \(401\)"):
            await DmsClient(http, BASE, RotatingSource("old")).heartbeat("t1", {}, [])
    assert route.call_count == 2


async def test_fail_401_refreshes_and_replays_once_with_the_same_body(
    http: httpx.AsyncClient,
) -> None:
    # protocol §1.11, fail row: 401 → refresh + replay once; any 2xx (here 204) is done
    body = FailBody(reason="runner failed: boom", details={})
    with respx.mock(base_url=BASE) as mock:
        mock.post("/tasks/t1/fail", headers={"authorization": "Bearer old"}).respond(401)
        fresh = mock.post("/tasks/t1/fail", headers={"authorization": "Bearer new"}).respond(204)
        await DmsClient(http, BASE, RotatingSource("old")).fail("t1", body)
    assert fresh.call_count == 1
    assert fresh.calls.last.request.content == b'{"reason":"runner failed: boom","details":{}}'
