"""Push jobs' connections check the address they reach (DNS rebinding), over real loopback HTTP.

The resolvers here stand in for a DNS server whose answer changes: ``public`` for the check
when the job is queued and started, loopback when the connection is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

import app.jobs.service
import app.services
from app.jobs.egress import PinnedBackend, push_client
from app.targets import AllowedHosts, check_target
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings
from tests.app.serving import serve

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.216.34"


async def public(host: str, port: int) -> Sequence[str]:
    return [PUBLIC]


async def loopback(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


def receiver(seen: list[str]) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        seen.append(request.method)
        return JSONResponse({"body": (await request.body()).decode()})

    async def stream(request: Request) -> StreamingResponse:
        seen.append(request.method)

        async def chunks() -> Any:
            for index in range(3):
                yield f"chunk{index};".encode()

        return StreamingResponse(chunks())

    return Starlette(
        routes=[Route("/echo", echo, methods=["GET", "POST"]), Route("/stream", stream)]
    )


async def test_a_name_that_now_resolves_to_loopback_is_refused_at_connect_time() -> None:
    seen: list[str] = []
    async with serve(receiver(seen)) as url:
        port = int(url.rsplit(":", 1)[1])
        target = f"http://rebind.test:{port}"
        await check_target("domain_server_url", target, AllowedHosts(), resolve=public)  # passes
        async with push_client(AllowedHosts(), resolve=loopback, proxies={}) as client:
            with pytest.raises(httpx.ConnectError) as refused:
                await client.post(f"{target}/echo", content=b"token")
    assert str(refused.value) == (
        f"connection to host rebind.test (127.0.0.1) is a loopback address; the node only sends "
        f"tokens to public addresses unless SPLATTER_ALLOWED_DOMAIN_HOSTS allows "
        f"rebind.test:{port} (checked when connecting)"
    )
    assert seen == []  # nothing reached the server


async def test_an_allowed_host_is_reached_with_bodies_and_streamed_responses() -> None:
    seen: list[str] = []
    allowed = AllowedHosts.parse("127.0.0.1")
    async with serve(receiver(seen)) as url, push_client(allowed, proxies={}) as client:
        posted = await client.post(f"{url}/echo", content=b"upload")
        async with client.stream("GET", f"{url}/stream") as response:
            streamed = [part async for part in response.aiter_bytes()]
    assert posted.json() == {"body": "upload"}
    assert b"".join(streamed) == b"chunk0;chunk1;chunk2;"
    assert seen == ["POST", "GET"]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where it was asked to connect; refuses every address but ``answers``."""

    def __init__(self, answers: str) -> None:
        self.asked: list[tuple[str, int]] = []
        self._answers = answers

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append((host, port))
        if host != self._answers:
            raise httpcore.ConnectError(f"{host} refused")
        return httpcore.AsyncMockStream([])


async def test_the_connection_goes_to_the_checked_address_not_to_a_second_lookup() -> None:
    async def two_public(host: str, port: int) -> Sequence[str]:
        return [PUBLIC, "203.0.113.9"]  # 203.0.113.9: TEST-NET-3, not public

    inner = RecordingBackend(answers=PUBLIC)
    pinned = PinnedBackend(AllowedHosts(), resolve=public, backend=inner)
    await pinned.connect_tcp("domain.example", 443)
    assert inner.asked == [(PUBLIC, 443)]  # the address, never the name

    mixed = PinnedBackend(AllowedHosts(), resolve=two_public, backend=inner)
    with pytest.raises(httpcore.ConnectError, match=r"\(203\.0\.113\.9\) is a private address"):
        await mixed.connect_tcp("domain.example", 443)  # one non-public answer is enough

    async def two_addresses(host: str, port: int) -> Sequence[str]:
        return ["1.1.1.1", PUBLIC]

    fallback = PinnedBackend(AllowedHosts(), resolve=two_addresses, backend=inner)
    inner.asked.clear()
    await fallback.connect_tcp("domain.example", 443)
    assert inner.asked == [("1.1.1.1", 443), (PUBLIC, 443)]  # the next checked address

    allowed = PinnedBackend(AllowedHosts.parse("*.lan"), resolve=loopback, backend=inner)
    inner.asked.clear()
    with pytest.raises(httpcore.ConnectError, match=r"domain\.lan refused"):
        await allowed.connect_tcp("domain.lan", 8443)
    assert inner.asked == [("domain.lan", 8443)]  # allowed: connected to as it is


async def test_with_a_proxy_in_the_environment_push_jobs_keep_the_proxied_client() -> None:
    seen: list[str] = []
    async with serve(receiver(seen)) as url:
        # no proxy is really set in the test's environment: the request goes straight out,
        # unchecked, as it would go to the proxy
        proxies = {"https": "http://proxy.invalid:3128"}
        async with push_client(AllowedHosts(), proxies=proxies) as client:
            response = await client.get(f"{url}/echo")
    assert response.status_code == 200 and seen == ["GET"]


async def test_a_push_job_whose_domain_name_rebinds_to_loopback_sends_it_nothing(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    # the checks (queued, started) see a public answer; the connections see loopback
    monkeypatch.setattr(app.jobs.service, "check_target", partial(check_target, resolve=public))
    monkeypatch.setattr(app.services, "push_client", partial(push_client, resolve=loopback))
    scene = emulated_scene(emulator)
    port = int(scene.server_url.rsplit(":", 1)[1].split("/", 1)[0])
    settings = make_settings(tmp_path, "write-outputs", splatter_allowed_domain_hosts="")
    async with serve(receiver(seen)) as progress:
        progress_port = int(progress.rsplit(":", 1)[1])
        envelope = {
            **push_envelope(emulator, scene, [scene.cid.replace("127.0.0.1", "rebind.test")]),
            "domain_server_url": scene.server_url.replace("127.0.0.1", "rebind.test"),
            "progress_url": f"http://rebind.test:{progress_port}/echo",
        }
        async with running_node(settings) as node:
            job = await node.push(envelope)
            done = await node.wait_state(job["id"], within_s=60.0)
    assert done["state"] == "failed"
    assert done["error"].startswith("runner failed: materialize cid http://rebind.test:")
    (failure,) = [e["event"] for e in done["events"] if e["event"]["level"] == "error"]
    assert (
        f"connection to host rebind.test (127.0.0.1) is a loopback address; the node only sends "
        f"tokens to public addresses unless SPLATTER_ALLOWED_DOMAIN_HOSTS allows "
        f"rebind.test:{port} (checked when connecting)"
    ) in failure["cause"]
    assert emulator.state.request_log("domain") == []
    assert seen == []
