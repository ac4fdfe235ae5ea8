"""Builders of wire bodies for the domain_client tests (leases, metadata, multipart, tokens)."""

from __future__ import annotations

import base64
import functools
import json
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain_client.timestamps import format_timestamp

BASE = "https://auki.test"
"""One mocked base URL for DMS, DDS and the domain server (as upstream tests do)."""
CAPABILITY = "/splatter/colmap/v1"
TEST_CAPABILITY = "/test/pipeline/v1"
PRIVATE_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"
ADDRESS = "0xfdbb6caf01414300c16ea14859fec7736d95355f"


def now() -> datetime:
    return datetime.now(UTC)


def ts(offset_s: float = 0.0) -> str:
    """An RFC 3339 timestamp ``offset_s`` seconds from now."""
    return format_timestamp(now() + timedelta(seconds=offset_s))


def new_id() -> str:
    return str(uuid.uuid4())


def jwt_token(domain_id: str, audience: str = BASE, ttl_s: float = 60.0) -> str:
    """A JWT-shaped domain token like the [SDK]/[NH] fixtures (header ``e30`` = ``{}``)."""
    claims = {
        "iss": "dds",
        "domain_id": domain_id,
        "aud": [audience],
        "exp": int((now() + timedelta(seconds=ttl_s)).timestamp()),
    }
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"e30.{payload}.c2ln"


def lease_body(
    *,
    capability: str = CAPABILITY,
    task_id: str | None = None,
    job_id: str | None = None,
    domain_id: str | None = None,
    server_url: str = BASE,
    token: str = "t-A",
    lease_ttl_s: float = 60.0,
    token_ttl_s: float = 60.0,
    outputs_prefix: str | None = "out",
    inputs_cids: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A lease envelope (protocol §1.6) with random UUIDs unless given."""
    task: dict[str, Any] = {
        "id": task_id or new_id(),
        "job_id": job_id or new_id(),
        "capability": capability,
        "inputs_cids": inputs_cids or [],
    }
    if outputs_prefix is not None:
        task["outputs_prefix"] = outputs_prefix
    body: dict[str, Any] = {
        "task": task,
        "domain_id": domain_id or new_id(),
        "domain_server_url": server_url,
        "access_token": token,
        "access_token_expires_at": ts(token_ttl_s),
        "lease_expires_at": ts(lease_ttl_s),
    }
    body.update(extra)
    return body


def metadata_json(
    data_id: str, name: str, data_type: str, size: int, domain_id: str | None = None
) -> dict[str, Any]:
    """A metadata object (protocol §2.4)."""
    body: dict[str, Any] = {
        "id": data_id,
        "name": name,
        "data_type": data_type,
        "size": size,
        "created_at": "2026-04-16T10:00:00.123456789Z",
        "updated_at": "2026-04-16T10:00:01+00:00",
    }
    if domain_id is not None:
        body["domain_id"] = domain_id
    return body


def multipart_body(
    boundary: str,
    items: list[tuple[dict[str, str], bytes]],
    *,
    newline: str = "\r\n",
) -> bytes:
    """A multipart download body (protocol §2.5); each item = (disposition params, content).

    ``size`` is filled from the content unless the params give one.
    """
    nl = newline.encode()
    out = bytearray()
    for params, content in items:
        params = {"size": str(len(content)), **params}
        disposition = "; ".join(f'{key}="{value}"' for key, value in params.items())
        out += f"--{boundary}".encode() + nl
        out += f"Content-Disposition: form-data; {disposition}".encode() + nl
        out += b"Content-Type: application/octet-stream" + nl + nl
        out += content + nl
    out += f"--{boundary}--".encode() + nl
    return bytes(out)


def json_of(request_content: bytes) -> Any:
    return json.loads(request_content)


def fallback_404(mock: Any) -> Any:
    """Answer 404 to every request no earlier route matched (call after the other routes),
    as a real server without that endpoint or item would."""
    return mock.route(name="fallback-404").respond(404)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """Building a verifying SSL context costs ~0.1 s; the suite builds one and shares it."""
    return ssl.create_default_context()
