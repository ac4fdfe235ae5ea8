"""Domain server over real HTTP: info, auth, listing, both download formats, single-request
uploads, limits and naming rules, delete."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from emulator import EmulatorServer
from emulator.storage import DataItem
from tests.emulator.factories import (
    bearer,
    heartbeat,
    lease_task,
    multipart_headers,
    parse_download,
    upload_body,
)
from tests.support.emulator import StartEmulator

DOMAIN = str(uuid.uuid4())
DATA = f"/api/v1/domains/{DOMAIN}/data"
JSON = {"Accept": "application/json"}
MULTIPART = {"Accept": "multipart/form-data"}


def _token(emulator: EmulatorServer, domain_id: str = DOMAIN, ttl_s: float = 300) -> str:
    return emulator.state.issue_domain_token(domain_id, ttl_s).token


def _seed(emulator: EmulatorServer, name: str, data_type: str, content: bytes) -> DataItem:
    return emulator.state.seed_data(DOMAIN, name, data_type, content)


@pytest.fixture
def auth(emulator: EmulatorServer) -> dict[str, str]:
    """Bearer header with a live token for DOMAIN."""
    return bearer(_token(emulator))


# ---------------------------------------------------------------- info and auth


def test_info_publishes_the_limits(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(request_max_bytes=1000, domain_data_max_bytes=500)
    response = httpx.get(f"{emulator.base_url}/api/v1/info")
    assert response.status_code == 200
    assert response.json() == {
        "upload": {
            "request_max_bytes": 1000,
            "domain_data_max_bytes": 500,
            "multipart": {"enabled": True},
        }
    }


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing Authorization: Bearer header"),
        ({"Authorization": "Token abc"}, "Authorization header must be 'Bearer <token>'"),
        (bearer("a.b"), "expected three dot-separated segments"),
        (bearer("e30.e30.sig"), "token signature does not verify"),
    ],
)
def test_bad_bearers_are_401(http: httpx.Client, headers: dict[str, str], detail: str) -> None:
    response = http.get(DATA, headers=headers)
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = _token(emulator, ttl_s=10)
    assert http.get(DATA, headers=bearer(token)).status_code == 200
    emulator.state.advance_clock(11)
    response = http.get(DATA, headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "domain token expired"


def test_token_for_another_domain_is_401(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = _token(emulator, domain_id=str(uuid.uuid4()))
    response = http.get(DATA, headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == f"domain token is not valid for domain {DOMAIN}"


def test_token_for_another_server_is_401(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = emulator.state.issue_domain_token(DOMAIN, server_url="https://elsewhere.example")
    response = http.get(DATA, headers=bearer(token.token))
    assert response.status_code == 401
    assert "audience does not include" in response.json()["detail"]


def test_dds_access_token_is_not_a_domain_token(http: httpx.Client) -> None:
    leased = lease_task(http)
    url = f"/api/v1/domains/{leased.domain_id}/data"
    assert http.get(url, headers=bearer(leased.domain_token)).status_code == 200
    response = http.get(url, headers=bearer(leased.node_token))
    assert response.status_code == 401
    assert "not a domain token" in response.json()["detail"]


def test_rotated_token_keeps_working_until_exp_by_default(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="always")
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        assert heartbeat(http, leased).status_code == 200
        url = f"/api/v1/domains/{leased.domain_id}/data"
        assert http.get(url, headers=bearer(leased.domain_token)).status_code == 200


def test_superseded_token_is_refused_when_revocation_is_on(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="always", revoke_superseded_tokens=True)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        new_token = heartbeat(http, leased).json()["access_token"]
        url = f"/api/v1/domains/{leased.domain_id}/data"
        old = http.get(url, headers=bearer(leased.domain_token))
        assert old.status_code == 401
        assert old.json()["detail"] == "domain token was superseded or its lease ended"
        assert http.get(url, headers=bearer(new_token)).status_code == 200


# ---------------------------------------------------------------- listing


def test_list_by_ids_name_and_type(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    first = _seed(emulator, "scan_a", "dmt_recording_mp4", b"aa")
    second = _seed(emulator, "scan_b", "dmt_manifest_json", b"bbb")
    response = http.get(DATA, params={"ids": f"{second.id},{first.id}"}, headers=auth | JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert [item["id"] for item in response.json()["data"]] == [second.id, first.id]
    # The same query with the comma written unencoded in the URL.
    raw = http.get(f"{DATA}?ids={first.id},{second.id}", headers=auth | JSON).json()["data"]
    assert [item["id"] for item in raw] == [first.id, second.id]
    by_name = http.get(DATA, params={"name": "scan_b"}, headers=auth | JSON).json()["data"]
    assert by_name == [second.to_json()]
    by_type = http.get(DATA, params={"data_type": "dmt_recording_mp4"}, headers=auth).json()
    assert by_type["data"] == [first.to_json()]
    both = http.get(DATA, params={"name": "scan_a", "data_type": "x"}, headers=auth).json()
    assert both == {"data": []}


def test_metadata_has_exactly_the_spec_fields(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    item = _seed(emulator, "m", "json", b"{}")
    listed = http.get(DATA, headers=auth | JSON).json()["data"][0]
    assert set(listed) == {
        "id",
        "domain_id",
        "name",
        "data_type",
        "size",
        "created_at",
        "updated_at",
    }
    assert listed["domain_id"] == DOMAIN and listed["size"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", listed["created_at"])
    one = http.get(f"{DATA}/{item.id}", headers=auth)
    assert one.status_code == 200 and one.json() == listed


def test_unknown_ids_are_skipped_in_lists_and_404_by_id(
    http: httpx.Client, auth: dict[str, str]
) -> None:
    missing = str(uuid.uuid4())
    assert http.get(DATA, params={"ids": missing}, headers=auth).json() == {"data": []}
    for url in (f"{DATA}/{missing}", f"{DATA}/{missing}?raw=true"):
        response = http.get(url, headers=auth)
        assert response.status_code == 404
        assert f"unknown domain data id {missing}" in response.json()["detail"]


def test_empty_results_can_be_404(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(empty_list_404=True)
    response = httpx.get(
        f"{emulator.base_url}{DATA}", params={"name": "none"}, headers=bearer(_token(emulator))
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "no domain data matches the query"


def test_more_than_100_ids_is_400(http: httpx.Client, auth: dict[str, str]) -> None:
    ids = ",".join(str(uuid.uuid4()) for _ in range(101))
    response = http.get(DATA, params={"ids": ids}, headers=auth)
    assert response.status_code == 400
    assert response.json()["detail"] == "at most 100 ids per request"


# ---------------------------------------------------------------- downloads


def test_multipart_download_format(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    first = _seed(emulator, "scan_2024-01-02_03-04-05", "refined_scan_zip", b"\x00zip\r\n")
    second = _seed(emulator, "manifest", "dmt_manifest_json", b'{"test": "test"}')
    response = http.get(DATA, params={"ids": f"{first.id},{second.id}"}, headers=auth | MULTIPART)
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert re.fullmatch(r"[0-9a-f]{60}", boundary)
    parts = parse_download(response.content, boundary)
    assert [part.content for part in parts] == [b"\x00zip\r\n", b'{"test": "test"}']
    assert parts[0].headers["Content-Type"] == "application/octet-stream"
    assert parts[0].params == {
        "name": first.name,
        "data-type": first.data_type,
        "id": first.id,
        "domain-id": DOMAIN,
        "size": "6",
        "created-at": first.created_at,
        "updated-at": first.updated_at,
    }


def test_multipart_download_survives_the_boundary_inside_content(
    start_emulator: StartEmulator,
) -> None:
    boundary = "feedface" * 7 + "abcd"
    emulator = start_emulator(download_boundary=boundary)
    tricky = (
        b"\r\n--"
        + boundary.encode()
        + b"\r\nContent-Disposition: x\r\n\r\n"
        + bytes(range(256))
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    item = _seed(emulator, "tricky", "binary", tricky)
    after = _seed(emulator, "after", "binary", b"")
    response = httpx.get(
        f"{emulator.base_url}{DATA}",
        params={"ids": f"{item.id},{after.id}"},
        headers=bearer(_token(emulator)) | MULTIPART,
    )
    parts = parse_download(response.content, boundary)
    assert [part.content for part in parts] == [tricky, b""]
    assert [part.params["size"] for part in parts] == [str(len(tricky)), "0"]


def test_empty_multipart_download_is_only_the_closing_delimiter(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(download_boundary="b0undary")
    response = httpx.get(
        f"{emulator.base_url}{DATA}",
        params={"name": "nothing"},
        headers=bearer(_token(emulator)) | MULTIPART,
    )
    assert response.status_code == 200
    assert response.content == b"--b0undary--\r\n"


def test_accept_picks_the_format(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    _seed(emulator, "x", "json", b"1")
    cases = {
        "multipart/form-data, application/json": "multipart/form-data",
        "application/json;q=1, multipart/form-data": "application/json",
        "*/*": "application/json",
        "text/plain": "application/json",
    }
    for accept, expected in cases.items():
        response = http.get(DATA, headers=auth | {"Accept": accept})
        assert response.headers["content-type"].startswith(expected), accept
    no_accept = http.get(DATA, headers=auth | {"Accept": ""})
    assert no_accept.headers["content-type"] == "application/json"


def test_raw_download_is_byte_exact(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    content = bytes(range(256)) * 5000  # > 1 MiB: streamed in several chunks
    item = _seed(emulator, "big", "binary", content)
    with http.stream("GET", f"{DATA}/{item.id}", params={"raw": "true"}, headers=auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-length"] == str(len(content))
        assert b"".join(response.iter_bytes()) == content


# ---------------------------------------------------------------- single-request uploads


def test_create_with_the_sdk_boundary_and_read_back(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    boundary = f"auki-{uuid.uuid4()}"
    body = upload_body(
        [({"name": "refined_splat_x", "data-type": "splat_data"}, b"splat")], boundary
    )
    response = http.post(DATA, content=body, headers=multipart_headers(auth_token(auth), boundary))
    assert response.status_code == 200, response.text
    (created,) = response.json()["data"]
    assert created["name"] == "refined_splat_x" and created["data_type"] == "splat_data"
    assert created["size"] == 5 and created["domain_id"] == DOMAIN
    assert emulator.state.read_data(DOMAIN, created["id"]) == b"splat"


def test_create_several_items_with_the_pm_fixed_boundary(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    parts = [
        ({"name": "a", "data-type": "json"}, b'{"a": 1}'),
        ({"data-type": "bin", "name": "b"}, b"\r\n--boundar\r\n"),
    ]
    body = upload_body(parts, "boundary")
    response = http.post(
        DATA, content=body, headers=multipart_headers(auth_token(auth), "boundary")
    )
    assert response.status_code == 200
    created = response.json()["data"]
    assert [item["name"] for item in created] == ["a", "b"]
    assert emulator.state.read_data(DOMAIN, created[1]["id"]) == b"\r\n--boundar\r\n"


def test_upload_parser_tolerates_escapes_tokens_lf_and_preamble(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    body = (
        b"preamble to ignore\n--xyz\n"
        b'content-disposition: form-data; data-type=plain_token; name="esc\\aped_1"\n'
        b"\nline one\nline two\n--xyz--\nepilogue"
    )
    headers = bearer(auth_token(auth)) | {"Content-Type": 'multipart/form-data; boundary="xyz"'}
    response = http.post(DATA, content=body, headers=headers)
    assert response.status_code == 200, response.text
    (created,) = response.json()["data"]
    assert created["name"] == "escaped_1" and created["data_type"] == "plain_token"
    assert emulator.state.read_data(DOMAIN, created["id"]) == b"line one\nline two"


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("a/b", "name contains disallowed character '/'"),
        ("a=b", "name contains disallowed character '='"),
        ("", "name must be 1–128 bytes long (got 0)"),
        ("é" * 65, "name must be 1–128 bytes long (got 130)"),
        ("tab\there", "name contains a control character (U+0009)"),
    ],
)
def test_name_rules_are_enforced(
    http: httpx.Client, auth: dict[str, str], name: str, detail: str
) -> None:
    body = upload_body([({"name": name, "data-type": "json"}, b"{}")], "bnd")
    response = http.post(DATA, content=body, headers=multipart_headers(auth_token(auth), "bnd"))
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_data_type_rules_are_enforced(http: httpx.Client, auth: dict[str, str]) -> None:
    body = upload_body([({"name": "ok", "data-type": "a+b"}, b"{}")], "bnd")
    response = http.post(DATA, content=body, headers=multipart_headers(auth_token(auth), "bnd"))
    assert response.status_code == 400
    assert response.json()["detail"] == "data_type contains disallowed character '+'"


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        ("application/json", b"{}", "Content-Type must be multipart/form-data"),
        ("multipart/form-data", b"", "has no boundary parameter"),
        ("multipart/form-data; boundary=b", b"--b\r\n\r\nx\r\n--b--\r\n", "no Content-Disposition"),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data", "empty line"),
        ("multipart/form-data; boundary=zz", b"--b--\r\n", "does not contain the boundary"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="a"; data-type="t"\r\n\r\nabc',
            "ends without the closing delimiter",
        ),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; data-type="t"\r\n\r\nabc\r\n--b--\r\n',
            "part 1: Content-Disposition lacks the name parameter",
        ),
        ("multipart/form-data; boundary=b", b"--b--\r\n", "multipart body has no parts"),
    ],
)
def test_malformed_uploads_are_400(
    http: httpx.Client, auth: dict[str, str], content_type: str, body: bytes, detail: str
) -> None:
    response = http.post(DATA, content=body, headers=auth | {"Content-Type": content_type})
    assert response.status_code == 400
    assert detail in response.json()["detail"]


def test_duplicate_name_and_type_is_409(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    _seed(emulator, "dup", "json", b"1")
    body = upload_body([({"name": "dup", "data-type": "json"}, b"2")], "bnd")
    response = http.post(DATA, content=body, headers=multipart_headers(auth_token(auth), "bnd"))
    assert response.status_code == 409
    assert response.json()["detail"] == "domain data named 'dup' of type 'json' already exists"
    other_type = upload_body([({"name": "dup", "data-type": "txt"}, b"2")], "bnd")
    headers = multipart_headers(auth_token(auth), "bnd")
    assert http.post(DATA, content=other_type, headers=headers).status_code == 200


def test_a_rejected_request_stores_nothing(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    parts = [
        ({"name": "fine", "data-type": "json"}, b"1"),
        ({"name": "bad/", "data-type": "j"}, b""),
    ]
    body = upload_body(parts, "bnd")
    response = http.post(DATA, content=body, headers=multipart_headers(auth_token(auth), "bnd"))
    assert response.status_code == 400
    assert emulator.state.data_items(DOMAIN) == []


def test_update_replaces_content_by_id(
    http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]
) -> None:
    item = _seed(emulator, "refined_splat", "splat_data", b"old")
    emulator.state.advance_clock(1)
    body = upload_body([({"id": item.id}, b"new content")], "bnd")
    response = http.put(DATA, content=body, headers=multipart_headers(auth_token(auth), "bnd"))
    assert response.status_code == 200
    (updated,) = response.json()["data"]
    assert updated["id"] == item.id and updated["name"] == "refined_splat"
    assert updated["size"] == 11 and updated["created_at"] == item.created_at
    assert updated["updated_at"] > item.updated_at
    assert emulator.state.read_data(DOMAIN, item.id) == b"new content"


def test_update_errors(http: httpx.Client, auth: dict[str, str]) -> None:
    headers = multipart_headers(auth_token(auth), "bnd")
    unknown = upload_body([({"id": str(uuid.uuid4())}, b"x")], "bnd")
    response = http.put(DATA, content=unknown, headers=headers)
    assert response.status_code == 404
    assert "unknown domain data id" in response.json()["detail"]
    no_id = upload_body([({"name": "n", "data-type": "t"}, b"x")], "bnd")
    response = http.put(DATA, content=no_id, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == "part 1: Content-Disposition lacks the id parameter"


def test_request_max_bytes_is_413(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(request_max_bytes=1000)
    body = upload_body([({"name": "big", "data-type": "bin"}, b"x" * 2000)], "bnd")
    response = httpx.post(
        f"{emulator.base_url}{DATA}",
        content=body,
        headers=multipart_headers(_token(emulator), "bnd"),
    )
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail == f"upload request body is {len(body)} bytes; the limit is 1000"
    assert emulator.state.data_items(DOMAIN) == []


def test_domain_data_max_bytes_is_413(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(domain_data_max_bytes=10)
    body = upload_body([({"name": "big", "data-type": "bin"}, b"x" * 11)], "bnd")
    response = httpx.post(
        f"{emulator.base_url}{DATA}",
        content=body,
        headers=multipart_headers(_token(emulator), "bnd"),
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "item 'big' is 11 bytes; domain_data_max_bytes is 10"


def test_large_unauthorised_upload_still_gets_its_401(http: httpx.Client) -> None:
    body = upload_body([({"name": "big", "data-type": "bin"}, b"x" * 8_000_000)], "bnd")
    response = http.post(DATA, content=body, headers=multipart_headers("bad.token.here", "bnd"))
    assert response.status_code == 401


def test_delete(http: httpx.Client, emulator: EmulatorServer, auth: dict[str, str]) -> None:
    item = _seed(emulator, "gone", "json", b"1")
    assert http.delete(f"{DATA}/{item.id}", headers=auth).status_code == 204
    assert http.get(f"{DATA}/{item.id}", headers=auth).status_code == 404
    again = http.delete(f"{DATA}/{item.id}", headers=auth)
    assert again.status_code == 404
    assert http.delete(f"{DATA}/{item.id}").status_code == 401


def test_data_dir_keeps_items_across_restarts(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator(data_dir=tmp_path)
    body = upload_body([({"name": "kept", "data-type": "bin"}, b"\x00\x01")], "bnd")
    response = httpx.post(
        f"{emulator.base_url}{DATA}",
        content=body,
        headers=multipart_headers(_token(emulator), "bnd"),
    )
    item_id = response.json()["data"][0]["id"]
    assert (tmp_path / "domains" / DOMAIN / f"{item_id}.bin").read_bytes() == b"\x00\x01"
    restarted = start_emulator(data_dir=tmp_path)
    assert restarted.state.read_data(DOMAIN, item_id) == b"\x00\x01"
    assert [item.name for item in restarted.state.data_items(DOMAIN)] == ["kept"]
    raw = httpx.get(
        f"{restarted.base_url}{DATA}/{item_id}?raw=true", headers=bearer(_token(restarted))
    )
    assert raw.content == b"\x00\x01"
    delete = httpx.delete(
        f"{restarted.base_url}{DATA}/{item_id}", headers=bearer(_token(restarted))
    )
    assert delete.status_code == 204
    assert not (tmp_path / "domains" / DOMAIN / f"{item_id}.bin").exists()


def auth_token(headers: dict[str, str]) -> str:
    """The token inside a Bearer header."""
    return headers["Authorization"].removeprefix("Bearer ")
