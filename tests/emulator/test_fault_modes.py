"""Fault modes used by the upload fault tests, over real HTTP: a fault that matches the query
string, and an ``after`` fault that serves the request and then loses its answer."""

from __future__ import annotations

import uuid

import httpx

from domain_client.multipart import UploadPart, build_upload_body
from emulator import EmulatorServer

DOMAIN = str(uuid.uuid4())
DATA = f"/api/v1/domains/{DOMAIN}/data"


def create(http: httpx.Client, token: str, name: str, query: str = "") -> httpx.Response:
    content_type, body = build_upload_body([UploadPart.create(name, "binary", b"bytes")])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    return http.post(f"{DATA}{query}", content=body, headers=headers)


def stored_names(emulator: EmulatorServer) -> list[str]:
    return sorted(item.name for item in emulator.state.data_items(DOMAIN))


def test_query_and_after_faults(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = emulator.state.issue_domain_token(DOMAIN).token
    fault = {
        "service": "domain",
        "status": 502,
        "method": "POST",
        "query_contains": "tag=lost",
        "after": True,
    }
    armed = http.post("/_emulator/faults", json=fault)
    assert armed.status_code == 201 and armed.json()["after"] is True
    assert create(http, token, "plain").status_code == 200  # no query: not matched
    lost = create(http, token, "served", "?tag=lost")
    assert lost.status_code == 502 and "injected fault" in lost.json()["detail"]
    assert stored_names(emulator) == ["plain", "served"]  # served, though answered 502

    http.post("/_emulator/faults", json={**fault, "after": False}).raise_for_status()
    assert create(http, token, "refused", "?tag=lost").status_code == 502
    assert stored_names(emulator) == ["plain", "served"]  # refused before the app saw it
    assert http.get("/_emulator/faults").json()["faults"] == []
