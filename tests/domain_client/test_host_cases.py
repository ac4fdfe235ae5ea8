"""Protocol §4.8–4.10: the host contract (cases 30–33), SDK data grants (34) and the
reconstruction-server patterns (35, 36), run through the engine with scripted handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from domain_client import (
    DdsClient,
    DomainToken,
    LeaseLost,
    Registrar,
    RegistrationConfig,
    RunnerError,
    TaskCancelled,
    TaskContext,
    Wallet,
)
from tests.domain_client.engine_helpers import body_of, engine_for, heartbeat_echo
from tests.domain_client.factories import (
    BASE,
    CAPABILITY,
    PRIVATE_KEY,
    TEST_CAPABILITY,
    jwt_token,
    lease_body,
    metadata_json,
    new_id,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

SPLAT_NAME = "refined_splat_2024-01-02_03-04-05"
MANIFEST_NAME = "dmt_manifest_2024-01-02_03-04-05"
MANIFEST_PATH = Path("datasets/2024-01-02_03-04-05") / f"{MANIFEST_NAME}.dmt_manifest_json"


class HostFixture:
    """The [NH] router_flow fixture: one lease (also the heartbeat answer) and a domain."""

    def __init__(self, mock: respx.MockRouter, existing: list[dict[str, Any]]) -> None:
        self.domain_id, self.input_id, self.artifact_id = new_id(), new_id(), new_id()
        data = f"/api/v1/domains/{self.domain_id}/data"
        self.lease = lease_body(
            capability=TEST_CAPABILITY,
            domain_id=self.domain_id,
            token=jwt_token(self.domain_id),
            outputs_prefix=None,
            inputs_cids=[f"{BASE}{data}/{self.input_id}"],
        )
        self.task_id = self.lease["task"]["id"]
        tasks = f"/tasks/{self.task_id}"
        mock.get("/api/v1/info").respond(
            200,
            json={"upload": {"domain_data_max_bytes": 67108864, "request_max_bytes": 134217728}},
        )
        self.lease_route = mock.get("/tasks").mock(side_effect=self._lease)
        self.heartbeat = mock.post(f"{tasks}/heartbeat").mock(
            side_effect=heartbeat_echo(self.lease)
        )
        self.complete = mock.post(f"{tasks}/complete").respond(200)
        self.fail = mock.post(f"{tasks}/fail").respond(200)
        mock.get(data, params={"ids": self.input_id}).respond(
            200,
            json={
                "data": [
                    metadata_json(
                        self.input_id, MANIFEST_NAME, "dmt_manifest_json", 5, self.domain_id
                    )
                ]
            },
        )
        mock.get(f"{data}/{self.input_id}", params={"raw": "true"}).respond(200, content=b"input")
        self.lookup = mock.get(
            data, params={"name": SPLAT_NAME, "data_type": "splat_data"}
        ).respond(200, json={"data": existing})
        stored = {
            "data": [metadata_json(self.artifact_id, SPLAT_NAME, "splat_data", 11, self.domain_id)]
        }
        self.create = mock.post(data, content__contains=b"splat-bytes").respond(200, json=stored)
        self.update = mock.put(data, content__contains=b"splat-bytes").respond(200, json=stored)

    def _lease(self, request: httpx.Request) -> httpx.Response:
        return heartbeat_echo(self.lease)(request)

    def existing_item(self) -> dict[str, Any]:
        return metadata_json(self.artifact_id, SPLAT_NAME, "splat_data", 11, self.domain_id)

    def job_and_artifacts(self) -> dict[str, Any]:
        return {
            "job": {
                "task_id": self.task_id,
                "job_id": self.lease["task"]["job_id"],
                "domain_id": self.domain_id,
                "capability": TEST_CAPABILITY,
            },
            "artifacts": [
                {
                    "logical_path": SPLAT_NAME,
                    "name": SPLAT_NAME,
                    "data_type": "splat_data",
                    "id": self.artifact_id,
                }
            ],
        }


@pytest.fixture
def host_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def scripted_runner(
    tmp_path: Path, *, then: Callable[[TaskContext], Any] | None = None
) -> Callable[[TaskContext], Any]:
    """The scripted runner of §4.8: materialise, report progress, upload, then ``then``."""

    async def run(ctx: TaskContext) -> None:
        got = await ctx.storage.materialize(ctx.task.inputs_cids[0], tmp_path)
        assert got.primary.path == got.root / MANIFEST_PATH
        assert got.primary.path.read_bytes() == b"input"
        ctx.reporter.set_progress({"pct": 50, "stage": "python"})
        await ctx.storage.put_domain_artifact(SPLAT_NAME, SPLAT_NAME, "splat_data", b"splat-bytes")
        if then is not None:
            await then(ctx)

    return run


async def test_case_30_exact_complete_body(
    http: httpx.AsyncClient, host_mock: respx.MockRouter, tmp_path: Path
) -> None:
    host = HostFixture(host_mock, existing=[])
    engine = engine_for(http, {TEST_CAPABILITY: scripted_runner(tmp_path)})
    assert await engine.run_once() == "completed"
    assert body_of(host.complete.calls.last.request) == {
        "output_cids": [host.artifact_id],
        "meta": host.job_and_artifacts(),
    }
    assert host.fail.call_count == 0 and host.create.call_count == 1
    progress = [body_of(call.request)["progress"] for call in host.heartbeat.calls]
    assert {"pct": 50, "stage": "python"} in progress


async def test_case_31_exact_fail_body_and_keep_claiming(
    http: httpx.AsyncClient, host_mock: respx.MockRouter, tmp_path: Path
) -> None:
    host = HostFixture(host_mock, existing=[])

    async def exit_1(ctx: TaskContext) -> None:
        raise RunnerError("python job failed: status=Some(1)")

    engine = engine_for(http, {TEST_CAPABILITY: scripted_runner(tmp_path, then=exit_1)})
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.run_forever(stop))
    await eventually(lambda: host.fail.call_count >= 2)
    stop.set()
    await asyncio.wait_for(loop, 10)
    for call in host.fail.calls[:2]:
        assert body_of(call.request) == {
            "reason": "runner failed: python job failed: status=Some(1)",
            "details": host.job_and_artifacts(),
        }
    assert host.complete.call_count == 0


async def test_case_32_dms_cancel_sends_no_receipt_and_keeps_claiming(
    http: httpx.AsyncClient, host_mock: respx.MockRouter, tmp_path: Path
) -> None:
    host = HostFixture(host_mock, existing=[])
    waiting = asyncio.Event()

    async def wait_for_cancel(ctx: TaskContext) -> None:
        waiting.set()
        await ctx.cancelled.wait()
        ctx.raise_if_cancelled("python execution")

    runner = scripted_runner(tmp_path, then=wait_for_cancel)
    engine = engine_for(http, {TEST_CAPABILITY: runner}, heartbeat_max_interval_s=0.1)
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.run_forever(stop))
    await asyncio.wait_for(waiting.wait(), 10)
    host.heartbeat.mock(side_effect=heartbeat_echo(host.lease, cancel=True))
    await eventually(lambda: host.lease_route.call_count >= 2 and engine.outcomes["cancelled"] >= 1)
    stop.set()
    await asyncio.wait_for(loop, 10)
    assert host.complete.call_count == 0 and host.fail.call_count == 0


async def test_case_33_existing_artifact_replaced_by_id(
    http: httpx.AsyncClient, host_mock: respx.MockRouter, tmp_path: Path
) -> None:
    host = HostFixture(host_mock, existing=[])
    host.lookup.respond(200, json={"data": [host.existing_item()]})
    engine = engine_for(http, {TEST_CAPABILITY: scripted_runner(tmp_path)})
    assert await engine.run_once() == "completed"
    assert host.update.call_count >= 1 and host.create.call_count == 0
    assert f'id="{host.artifact_id}"'.encode() in host.update.calls.last.request.content
    assert body_of(host.complete.calls.last.request) == {
        "output_cids": [host.artifact_id],
        "meta": host.job_and_artifacts(),
    }


async def test_case_34_sdk_data_grant_token_reads() -> None:
    domain_id = new_id()
    clock = [datetime.now(UTC)]
    token = DomainToken(
        jwt_token(domain_id),
        lease_expires_at=clock[0] + timedelta(minutes=1),
        now=lambda: clock[0],
    )
    assert token.current().count(".") == 2  # readable, JWT-shaped
    clock[0] += timedelta(minutes=2)
    with pytest.raises(LeaseLost, match="lease lost: lease expired at"):
        token.current()
    revoked = DomainToken("t", lease_expires_at=datetime.now(UTC) + timedelta(minutes=1))
    revoked.revoke()
    with pytest.raises(TaskCancelled, match="task cancelled"):
        revoked.current()


async def test_case_35_loop_waits_for_registration_with_all_capabilities(
    http: httpx.AsyncClient,
) -> None:
    capabilities = ["/splatter/colmap/v1", "/splatter/local/v1", "/splatter/global/v1"]
    config = RegistrationConfig(reg_secret="s", capabilities=tuple(capabilities), version="1.0.0")
    registrar = Registrar(DdsClient(http, BASE), Wallet.from_hex(PRIVATE_KEY), config)
    handlers = {capability: _unused for capability in capabilities}
    # The registrar never runs, so registration stays pending.
    engine = engine_for(http, handlers, registrar=registrar, registration_poll_s=0.01)
    assert set(config.capabilities) == set(handlers)
    stop = asyncio.Event()
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        lease = mock.get("/tasks").respond(204)
        loop = asyncio.create_task(engine.run_forever(stop))
        await asyncio.sleep(0.2)
        assert not loop.done() and lease.call_count == 0
        stop.set()
        await asyncio.wait_for(loop, 5)


async def _unused(ctx: TaskContext) -> None:
    raise AssertionError("not reached")


def stub_pipeline(mode: str, *args: str) -> Callable[[TaskContext], Any]:
    """An in-process stand-in for reconstruction-server's mock_py_runner.py."""

    async def run(ctx: TaskContext) -> None:
        if mode == "print":
            ctx.reporter.log_event({"level": "info", "message": args[0], "source": "python_stdout"})
            ctx.reporter.log_event({"level": "warn", "message": args[1], "source": "python_stderr"})
        elif mode == "sleep":
            try:
                await asyncio.wait_for(ctx.cancelled.wait(), float(args[0]))
            except TimeoutError:
                return
            raise TaskCancelled("python execution")
        elif mode == "exit" and args[0] != "0":
            ctx.reporter.set_progress({"pct": 35, "stage": "python", "status": "failed"})
            raise RunnerError(f"python job failed: status=Some({args[0]})")

    return run


async def test_case_36_stub_pipeline_modes(http: httpx.AsyncClient) -> None:
    outcomes = {}
    for mode, args, cancel in (
        ("print", ("out", "err"), False),
        ("exit", ("3",), False),
        ("sleep", ("30",), True),
    ):
        lease = lease_body()
        tasks = f"/tasks/{lease['task']['id']}"
        with respx.mock(base_url=BASE, assert_all_called=False) as mock:
            mock.get("/tasks").respond(200, json=lease)
            heartbeat = mock.post(f"{tasks}/heartbeat").mock(
                side_effect=heartbeat_echo(lease, cancel=cancel)
            )
            complete = mock.post(f"{tasks}/complete").respond(200)
            fail = mock.post(f"{tasks}/fail").respond(200)
            engine = engine_for(
                http, {CAPABILITY: stub_pipeline(mode, *args)}, heartbeat_max_interval_s=0.05
            )
            if cancel:  # the initial heartbeat must pass; the next one cancels
                heartbeat.mock(
                    side_effect=[heartbeat_echo(lease)(), heartbeat_echo(lease, cancel=True)()]
                )
            outcomes[mode] = await asyncio.wait_for(engine.run_once(), 10)
            sent = [body_of(call.request) for call in heartbeat.calls]
        if mode == "print":
            assert complete.call_count == 1
            events = [event for body in sent for event in body["events"]]
            assert [e["message"] for e in events] == ["out", "err"]
        elif mode == "exit":
            assert body_of(fail.calls.last.request)["reason"] == (
                "runner failed: python job failed: status=Some(3)"
            )
            assert sent[-1]["progress"] == {"pct": 35, "stage": "python", "status": "failed"}
        else:
            assert complete.call_count == fail.call_count == 0
    assert outcomes == {"print": "completed", "exit": "failed", "sleep": "cancelled"}
