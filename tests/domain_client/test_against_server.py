"""The client suite against a server fixture: the respx fake and, when this checkout has it,
the emulator over real HTTP on 127.0.0.1. Client, emulator and spec must agree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from domain_client import (
    DdsAuth,
    DdsClient,
    DmsClient,
    DomainClient,
    DomainToken,
    EngineConfig,
    Handler,
    NodeConfig,
    NotFoundError,
    Registrar,
    RegistrationConfig,
    RetryPolicy,
    RunnerError,
    TaskContext,
    TaskEngine,
    TaskStorage,
    TokenConfig,
    UnauthorizedError,
    Wallet,
    build_lease_node,
)
from tests.domain_client.factories import CAPABILITY, PRIVATE_KEY, shared_ssl_context
from tests.domain_client.networks import (
    EmulatorNetwork,
    Network,
    RespxNetwork,
    emulator_module,
    new_domain,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture(params=["respx", "emulator"])
def network(request: pytest.FixtureRequest) -> Iterator[Network]:
    if request.param == "respx":
        with respx.mock(assert_all_called=False) as mock:
            yield RespxNetwork(mock)
        return
    emulator = emulator_module()
    if emulator is None:
        pytest.skip("emulator is not in this checkout")
    with emulator.EmulatorServer(EmulatorNetwork.config(emulator)) as server:
        yield EmulatorNetwork(server)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, verify=shared_ssl_context()) as http:
        yield http


def domain_client(network: Network, http: httpx.AsyncClient, domain_id: str) -> DomainClient:
    token = DomainToken(network.domain_token(domain_id))
    return DomainClient(http, network.server_url, domain_id, token, "suite", retry=FAST_RETRY)


async def logged_in(network: Network, http: httpx.AsyncClient) -> tuple[Registrar, DdsAuth]:
    dds = DdsClient(http, network.dds_base_url)
    wallet = Wallet.from_hex(PRIVATE_KEY)
    config = RegistrationConfig(
        reg_secret=network.reg_secret, capabilities=(CAPABILITY,), version="0.1.0"
    )
    registrar = Registrar(dds, wallet, config)
    assert await registrar.attempt() == "registered"
    return registrar, DdsAuth(dds, wallet, registrar=registrar, config=TokenConfig(jitter_ms=0))


async def test_register_login_and_poll_an_empty_queue(
    network: Network, client: httpx.AsyncClient
) -> None:
    _, auth = await logged_in(network, client)
    token = await auth.token()
    assert token and await auth.token() == token
    assert await DmsClient(client, network.dms_base_url, auth).lease() is None


async def test_wrong_registration_secret_is_refused(
    network: Network, client: httpx.AsyncClient
) -> None:
    config = RegistrationConfig(reg_secret="wrong", capabilities=(CAPABILITY,), version="0.1.0")
    registrar = Registrar(
        DdsClient(client, network.dds_base_url), Wallet.from_hex(PRIVATE_KEY), config
    )
    assert await registrar.attempt() == "slow_retry"  # a 4xx other than 409
    assert registrar.state == "disconnected"


async def test_domain_round_trip(
    network: Network, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    domain_id = new_domain()
    domain = domain_client(network, client, domain_id)
    created = await domain.create("scan_2024-01-02_03-04-05", "refined_scan_zip", b"zip-v1")
    listed = await domain.list_metadata(name="scan_2024-01-02_03-04-05")
    assert [item.id for item in listed] == [created.id]
    assert listed[0].size == 6 and listed[0].domain_id == domain_id
    assert await domain.download_raw(created.id, tmp_path / "raw.zip", expected_size=6) == 6
    assert (tmp_path / "raw.zip").read_bytes() == b"zip-v1"
    updated = await domain.update(created.id, b"zip-v2!")
    assert updated.id == created.id and network.content(domain_id, created.id) == b"zip-v2!"
    items = await domain.download_multipart(ids=[created.id], dest_dir=tmp_path / "mp")
    assert [i.path.read_bytes() for i in items] == [b"zip-v2!"]
    assert items[0].metadata.name == "scan_2024-01-02_03-04-05"
    await domain.delete(created.id)
    assert network.content(domain_id, created.id) is None
    with pytest.raises(NotFoundError, match=r"^not found \(404\)$"):
        await domain.download_raw(created.id, tmp_path / "gone")


async def test_chunked_upload_round_trip(
    network: Network, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    domain_id = new_domain()
    domain = domain_client(network, client, domain_id)
    payload = bytes(range(256)) * 14  # 3584 bytes: three full parts and a short one
    source = tmp_path / "splat.bin"
    source.write_bytes(payload)
    stored = await domain.upload_chunked("refined_splat", "splat_data", source)
    assert network.content(domain_id, stored.id) == payload
    replaced = await domain.upload_chunked("refined_splat", "splat_data", b"v2", stored.id)
    assert replaced.id == stored.id and network.content(domain_id, stored.id) == b"v2"


async def test_upsert_replaces_by_id(network: Network, client: httpx.AsyncClient) -> None:
    domain_id = new_domain()
    storage = TaskStorage(domain_client(network, client, domain_id), "task-1", "out")
    first = await storage.put_domain_artifact("splat", "refined_splat", "splat_data", b"one")
    fresh = TaskStorage(storage.domain, "task-2", "out")  # a re-run: found through the lookup
    second = await fresh.put_domain_artifact("splat", "refined_splat", "splat_data", b"two")
    assert first.id == second.id and network.content(domain_id, first.id or "") == b"two"
    assert network.names(domain_id) == [("refined_splat", "splat_data")]


@pytest.mark.parametrize("mode", ["list_raw", "multipart"])
async def test_materialize_by_cid_url(
    network: Network, client: httpx.AsyncClient, tmp_path: Path, mode: str
) -> None:
    domain_id = new_domain()
    manifest = network.seed(
        domain_id, "dmt_manifest_2024-01-02_03-04-05", "dmt_manifest_json", b'{"dataIDs": []}'
    )
    other = network.seed(domain_id, "refined_manifest_x.y", "refined_manifest_json", b"{}")
    storage = TaskStorage(domain_client(network, client, domain_id), "t", None, download_mode=mode)  # type: ignore[arg-type]
    cid = f"{network.server_url}/api/v1/domains/{domain_id}/data?ids={manifest},{other}"
    got = await storage.materialize(cid, tmp_path)
    paths = {
        item.path.relative_to(got.root).as_posix(): item.path.read_bytes()
        for item in [got.primary, *got.related]
    }
    manifest_path = "datasets/2024-01-02_03-04-05/dmt_manifest_2024-01-02_03-04-05"
    assert paths == {
        f"{manifest_path}.dmt_manifest_json": b'{"dataIDs": []}',
        "datasets/refined_manifest_x_y/refined_manifest_x_y.refined_manifest_json": b"{}",
    }


async def test_wrong_domain_token_is_unauthorized(
    network: Network, client: httpx.AsyncClient
) -> None:
    domain_id = new_domain()
    wrong = DomainClient(
        client,
        network.server_url,
        domain_id,
        DomainToken(network.domain_token(new_domain())),
        "suite",
    )
    with pytest.raises(UnauthorizedError, match=r"^unauthorized \(401\)$"):
        await wrong.list_metadata(name="x")


async def test_503_then_200_is_retried(network: Network, client: httpx.AsyncClient) -> None:
    domain_id = new_domain()
    data_id = network.seed(domain_id, "a", "b", b"abc")
    network.fail_next(f"/data/{data_id}", 503)
    domain = domain_client(network, client, domain_id)
    assert await domain.get_metadata(data_id) is not None


def splat_handler(work_dir: Path) -> Handler:
    """Materialise the manifest, report, upload the splat (the runner's shape, in miniature)."""

    async def run(ctx: TaskContext) -> None:
        got = await ctx.storage.materialize(ctx.task.inputs_cids[0], work_dir)
        manifest = json.loads(got.primary.path.read_text())
        ctx.reporter.set_progress({"pct": 50, "stage": "python", "scans": len(manifest["dataIDs"])})
        ctx.reporter.log_event({"level": "info", "stage": "python", "message": "trained"})
        await ctx.storage.put_domain_artifact(
            "refined_splat_2024-01-02_03-04-05",
            "refined_splat_2024-01-02_03-04-05",
            "splat_data",
            b"splat-bytes",
        )

    return run


def failing_handler(work_dir: Path) -> Handler:
    async def run(ctx: TaskContext) -> None:
        await ctx.storage.put_bytes("partial.json", b"{}")
        raise RunnerError("python job failed: status=Some(1)")

    return run


@pytest.mark.parametrize(
    ("make_handler", "status"), [(splat_handler, "completed"), (failing_handler, "failed")]
)
async def test_engine_cycle_against_the_server(
    network: Network, client: httpx.AsyncClient, tmp_path: Path, make_handler: Any, status: str
) -> None:
    registrar, auth = await logged_in(network, client)
    domain_id = new_domain()
    manifest = network.seed(
        domain_id,
        "refined_manifest_2024-01-02_03-04-05",
        "refined_manifest_json",
        b'{"dataIDs": ["refined_scan_a"]}',
    )
    cid = f"{network.server_url}/api/v1/domains/{domain_id}/data/{manifest}"
    task_id = network.create_task(domain_id, CAPABILITY, [cid], "out")
    dms = DmsClient(client, network.dms_base_url, auth)
    config = EngineConfig(client_id="suite", domain_retry=FAST_RETRY, heartbeat_max_interval_s=0.2)
    engine = TaskEngine(
        dms, client, {CAPABILITY: make_handler(tmp_path)}, config, registrar=registrar
    )
    assert await engine.run_once() == status
    assert await engine.run_once() == "no_work"
    result = network.task_result(task_id)
    assert result.status == status
    if status == "completed":
        splat = next(name for name in network.names(domain_id) if name[1] == "splat_data")
        assert splat == ("refined_splat_2024-01-02_03-04-05", "splat_data")
        body = result.complete_body
        artifact_id = body["output_cids"][0]
        assert network.content(domain_id, artifact_id) == b"splat-bytes"
        assert body["meta"]["job"]["task_id"] == task_id
        assert body["meta"]["artifacts"] == [
            {
                "logical_path": "out/refined_splat_2024-01-02_03-04-05",
                "name": "refined_splat_2024-01-02_03-04-05",
                "data_type": "splat_data",
                "id": artifact_id,
            }
        ]
    else:
        assert result.fail_body["reason"] == "runner failed: python job failed: status=Some(1)"
        assert [a["logical_path"] for a in result.fail_body["details"]["artifacts"]] == [
            "out/partial.json"
        ]


async def test_lease_node_from_environment_runs_a_task(
    network: Network, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    env = {
        "REG_SECRET": network.reg_secret,
        "SECP256K1_PRIVHEX": PRIVATE_KEY,
        "DDS_BASE_URL": network.dds_base_url,
        "DMS_BASE_URL": network.dms_base_url,
        "POLL_BACKOFF_MS_MIN": "10",
        "POLL_BACKOFF_MS_MAX": "50",
        "CLIENT_ID": "env-node",
    }
    config = NodeConfig.model_validate({name.lower(): value for name, value in env.items()})
    domain_id = new_domain()
    manifest = network.seed(
        domain_id,
        "refined_manifest_2024-01-02_03-04-05",
        "refined_manifest_json",
        b'{"dataIDs": []}',
    )
    cid = f"{network.server_url}/api/v1/domains/{domain_id}/data/{manifest}"
    task_id = network.create_task(domain_id, CAPABILITY, [cid], None)
    engine = EngineConfig(client_id="ignored", domain_retry=FAST_RETRY)
    node = build_lease_node(
        config,
        client,
        {CAPABILITY: splat_handler(tmp_path)},
        capabilities=[CAPABILITY],
        engine=engine,
    )
    assert not node.healthy
    node.start()
    await eventually(lambda: network.task_result(task_id).status == "completed", within_s=20)
    assert node.healthy
    await asyncio.wait_for(node.stop(), 10)
    assert not node.healthy
    assert node.registrar.state == "registered" and node.engine.outcomes["completed"] == 1
    with pytest.raises(ValueError, match="no handler for registered capabilities"):
        build_lease_node(config, client, {}, capabilities=[CAPABILITY])
