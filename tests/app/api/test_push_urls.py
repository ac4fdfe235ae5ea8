"""Bad-input corpus of the push door's URLs and token expiry, over real loopback HTTP.

Each case names the input and the expected error; every case also proves that nothing
happened: no job recorded, no request reached the (emulated) domain server, no job folder.
The test settings allow 127.0.0.1 (``make_settings``), so every loopback case here uses another
loopback spelling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import CAPABILITY
from emulator import EmulatorServer
from tests.app.api.nodes import running_node
from tests.app.domains import emulated_scene, push_envelope
from tests.app.factories import make_settings

pytestmark = pytest.mark.anyio

ALLOW_HINT = "unless SPLATTER_ALLOWED_DOMAIN_HOSTS allows"

CORPUS: list[tuple[str, str, str]] = [
    # (field, URL, expected error text)
    ("domain_server_url", "http://user:pw@127.0.0.1:9/", "must not contain userinfo (user@host)"),
    ("domain_server_url", "http://good.example@127.0.0.1:9/", "must not contain userinfo"),
    ("domain_server_url", "http://good.example\\@127.0.0.1:9/", "must not contain userinfo"),
    ("domain_server_url", "http://127.0.0.1:9/#@evil.example", "must not contain a fragment (#)"),
    ("domain_server_url", "http://127.0.0.1:9/api?x=", "must not contain a query (?)"),
    ("domain_server_url", "https://evil.example/?", "must not contain a query (?)"),
    ("domain_server_url", "http://169.254.169.254/latest/meta-data",
     f"host 169.254.169.254 is a link-local address; the node only sends tokens to public "
     f"addresses {ALLOW_HINT} 169.254.169.254:80"),
    ("domain_server_url", "http://[::ffff:169.254.169.254]/", "is a link-local address"),
    ("domain_server_url", "http://[::1]:9/", f"host ::1 is a loopback address; the node only "
     f"sends tokens to public addresses {ALLOW_HINT} [::1]:9"),
    ("domain_server_url", "http://[fd12:3456::1]/", "host fd12:3456::1 is a private address"),
    ("domain_server_url", "http://[fe80::1]/", "host fe80::1 is a link-local address"),
    ("domain_server_url", "http://127.0.0.2:9/", "host 127.0.0.2 is a loopback address"),
    ("domain_server_url", "http://localhost:9/", "host localhost (127.0.0.1) is a loopback"),
    ("domain_server_url", "http://0.0.0.0:9/", "host 0.0.0.0 is an unspecified address"),
    ("domain_server_url", "http://10.0.0.8/", "host 10.0.0.8 is a private address"),
    ("domain_server_url", "http://192.168.1.1/", "host 192.168.1.1 is a private address"),
    ("domain_server_url", "http://2130706433/",
     "host '2130706433' is a non-canonical IP address; write it as a dotted quad"),
    ("domain_server_url", "http://0x7f000001/", "host '0x7f000001' is a non-canonical IP"),
    ("domain_server_url", "http://0177.0.0.1/", "host '0177.0.0.1' is a non-canonical IP"),
    ("domain_server_url", "http://127.1/", "host '127.1' is a non-canonical IP"),
    ("domain_server_url", "http://0xa9.0xfe.0xa9.0xfe/", "is a non-canonical IP"),
    ("domain_server_url", "file:///etc/passwd", "URL must start with http:// or https://"),
    ("domain_server_url", "http:///nohost", "URL has no host"),
    ("progress_url", "http://user@127.0.0.1:9/progress", "must not contain userinfo"),
    ("progress_url", "http://127.0.0.1:9/progress#x", "must not contain a fragment (#)"),
    ("progress_url", "http://127.0.0.1:9/progress?to=x", "must not contain a query (?)"),
    ("progress_url", "http://169.254.169.254/", "progress_url host 169.254.169.254 is a link-"),
    ("progress_url", "http://[::1]/", "progress_url host ::1 is a loopback address"),
    ("progress_url", "http://[fc00::5]/", "progress_url host fc00::5 is a private address"),
    ("progress_url", "http://3232235777/", "is a non-canonical IP address"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "url", "message"), CORPUS)
async def test_push_urls_that_could_leak_the_token_are_refused(
    tmp_path: Path, emulator: EmulatorServer, field: str, url: str, message: str
) -> None:
    body = {**push_envelope(emulator, emulated_scene(emulator)), field: url}
    await _assert_refused(tmp_path, emulator, body, message)


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("2020-01-01T00:00:00Z", "the domain token expired at 2020-01-01T00:00:00Z"),
        ("2000-02-29T12:00:00.123456789+02:00", "the domain token expired at 2000-02-29T10:00"),
    ],
)
async def test_an_envelope_whose_token_has_expired_is_refused(
    tmp_path: Path, emulator: EmulatorServer, expires_at: str, message: str
) -> None:
    body = {
        **push_envelope(emulator, emulated_scene(emulator)),
        "access_token_expires_at": expires_at,
    }
    await _assert_refused(tmp_path, emulator, body, message)


async def test_an_allowed_private_host_is_accepted(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """The same loopback server under the name ``localhost``, once the operator allows it."""
    body = push_envelope(emulator, emulated_scene(emulator))
    port = emulator.domain_server_url.rsplit(":", 1)[1]
    body["progress_url"] = f"http://localhost:{port}/unused"
    settings = make_settings(
        tmp_path, "write-splat", splatter_allowed_domain_hosts=f"127.0.0.1 localhost:{port}"
    )
    async with running_node(settings) as node:
        job = await node.push(body)
        done = await node.wait_state(job["id"])
    assert done["state"] == "succeeded", done["error"]


async def _assert_refused(
    tmp_path: Path, emulator: EmulatorServer, body: dict[str, Any], message: str
) -> None:
    settings = make_settings(tmp_path, "write-splat")
    async with running_node(settings) as node:
        response = await node.client.post(CAPABILITY, json=body)
        listed = (await node.client.get("/jobs")).json()
    assert response.status_code == 422, response.text
    assert message in json.dumps(response.json()).replace("\\\\", "\\")
    assert listed["count"] == 0
    assert emulator.state.request_log("domain") == []
    assert list(settings.tasks_root.iterdir()) == []
