"""Test-side builders, written from protocol.md (not from the emulator's code): SIWE messages
and signatures, job bodies, multipart upload bodies, a size-driven multipart download parser,
and shortcuts that bring a node from registration to a leased task."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

# §1.3 test vector.
TEST_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"
TEST_ADDRESS = "0xfdbb6caf01414300c16ea14859fec7736d95355f"
OTHER_KEY = "0x" + "11" * 32
CAPABILITY = "/splatter/colmap/v1"
REG_SECRET = "emulator-reg-secret"
APP_TOKEN = "emulator-app-token"


def address_of(key: str) -> str:
    """Lowercase 0x address of a private key."""
    return str(Account.from_key(key).address).lower()


def siwe_message(nonce: dict[str, Any], address: str) -> str:
    """The node's SIWE message (§1.3): no statement, one empty line, no trailing newline."""
    return (
        f"{nonce['domain']} wants you to sign in with your Ethereum account:\n"
        f"{address}\n\n"
        f"URI: {nonce['uri']}\n"
        f"Version: {nonce['version']}\n"
        f"Chain ID: {nonce['chainId']}\n"
        f"Nonce: {nonce['nonce']}\n"
        f"Issued At: {nonce['issuedAt']}"
    )


def sign(message: str, key: str) -> str:
    """EIP-191 personal signature, 0x + 130 lowercase hex."""
    signature = Account.sign_message(encode_defunct(text=message), key).signature
    return "0x" + bytes(signature).hex()


def request_nonce(http: httpx.Client, address: str) -> dict[str, Any]:
    """POST /internal/v1/auth/siwe/request → the nonce body."""
    response = http.post("/internal/v1/auth/siwe/request", json={"wallet": address})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def signed_message(http: httpx.Client, key: str) -> tuple[str, str]:
    """A fresh nonce's SIWE message for `key`'s address, and its signature."""
    address = address_of(key)
    message = siwe_message(request_nonce(http, address), address)
    return message, sign(message, key)


def register(
    http: httpx.Client,
    key: str = TEST_KEY,
    capabilities: list[str] | None = None,
    secret: str = REG_SECRET,
    version: str = "1.2.3",
) -> httpx.Response:
    """Both registration calls of §1.4; returns the register-wallet response."""
    message, signature = signed_message(http, key)
    body = {
        "message": message,
        "signature": signature,
        "registration_credentials": secret,
        "capabilities": capabilities if capabilities is not None else [CAPABILITY],
        "version": version,
    }
    return http.post("/internal/v1/nodes/register-wallet", json=body)


def login(http: httpx.Client, key: str = TEST_KEY) -> httpx.Response:
    """The SIWE login of §1.5; returns the verify response."""
    message, signature = signed_message(http, key)
    body = {"address": address_of(key), "message": message, "signature": signature}
    return http.post("/internal/v1/auth/siwe/verify", json=body)


def node_token(
    http: httpx.Client, key: str = TEST_KEY, capabilities: list[str] | None = None
) -> str:
    """Register and log in; the DMS bearer."""
    register(http, key, capabilities).raise_for_status()
    response = login(http, key)
    response.raise_for_status()
    return str(response.json()["access_token"])


def task_body(capability: str = CAPABILITY, **overrides: Any) -> dict[str, Any]:
    """One task of a §1.12 job body."""
    body: dict[str, Any] = {
        "label": "splat",
        "stage": "splatter",
        "capability": capability,
        "capability_filters": {},
        "priority": 0,
        "inputs_cids": [],
        "outputs_prefix": "out",
        "mode": "public",
        "meta": {},
        "max_attempts": 3,
    }
    return body | overrides


def job_body(domain_id: str, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A §1.12 job body."""
    return {
        "label": "test job",
        "domain_id": domain_id,
        "priority": 0,
        "meta": {},
        "tasks": tasks if tasks is not None else [task_body()],
        "edges": [],
    }


def create_job(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/jobs with the app token; the response body."""
    response = http.post("/v1/jobs", json=body, headers=bearer(APP_TOKEN))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(token: str) -> dict[str, str]:
    """Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def jwt_claims(token: str) -> dict[str, Any]:
    """Payload of a JWT, unverified."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@dataclass
class LeasedTask:
    """A node logged in, holding the lease of a fresh task."""

    node_token: str
    domain_id: str
    lease: dict[str, Any]

    @property
    def task_id(self) -> str:
        return str(self.lease["task"]["id"])

    @property
    def domain_token(self) -> str:
        return str(self.lease["access_token"])


def lease_task(http: httpx.Client, task: dict[str, Any] | None = None) -> LeasedTask:
    """Register + log in the §1.3 wallet, create a one-task job, lease it."""
    token = node_token(http)
    domain_id = str(uuid.uuid4())
    create_job(http, job_body(domain_id, [task or task_body()]))
    response = http.get("/v1/tasks", headers=bearer(token))
    assert response.status_code == 200, response.text
    return LeasedTask(token, domain_id, response.json())


def heartbeat(
    http: httpx.Client, leased: LeasedTask, progress: Any = None, events: list[Any] | None = None
) -> httpx.Response:
    """POST a heartbeat for the leased task."""
    body = {"progress": progress if progress is not None else {}, "events": events or []}
    return http.post(
        f"/v1/tasks/{leased.task_id}/heartbeat", json=body, headers=bearer(leased.node_token)
    )


def upload_body(parts: list[tuple[dict[str, str], bytes]], boundary: str) -> bytes:
    """A §2.6 upload body: per part Content-Type + Content-Disposition, raw bytes, CRLF."""
    out = b""
    for params, content in parts:
        disposition = "; ".join(f'{key}="{value}"' for key, value in params.items())
        out += (
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: form-data; {disposition}\r\n\r\n"
        ).encode()
        out += content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def multipart_headers(token: str, boundary: str) -> dict[str, str]:
    """Bearer + multipart Content-Type."""
    return bearer(token) | {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@dataclass
class DownloadedPart:
    """One part of a multipart download, parsed by its `size` parameter."""

    params: dict[str, str]
    headers: dict[str, str]
    content: bytes


def parse_download(body: bytes, boundary: str) -> list[DownloadedPart]:
    """Reference §2.5 parser: headers up to CRLF CRLF, then exactly `size` bytes, then CRLF."""
    delimiter = f"--{boundary}".encode()
    pos, parts = 0, list[DownloadedPart]()
    while True:
        assert body[pos : pos + len(delimiter)] == delimiter, body[pos : pos + 80]
        pos += len(delimiter)
        if body[pos : pos + 4] == b"--\r\n":
            assert pos + 4 == len(body), "bytes after the closing delimiter"
            return parts
        assert body[pos : pos + 2] == b"\r\n"
        head_end = body.index(b"\r\n\r\n", pos)
        headers = dict(
            line.split(": ", 1) for line in body[pos + 2 : head_end].decode().split("\r\n")
        )
        params = _disposition_params(headers["Content-Disposition"])
        start = head_end + 4
        end = start + int(params["size"])
        parts.append(DownloadedPart(params, headers, body[start:end]))
        assert body[end : end + 2] == b"\r\n"
        pos = end + 2


def _disposition_params(value: str) -> dict[str, str]:
    kind, *pairs = value.split("; ")
    assert kind == "form-data"
    params = {}
    for pair in pairs:
        key, raw = pair.split("=", 1)
        assert raw.startswith('"') and raw.endswith('"'), pair
        params[key] = raw[1:-1]
    return params
