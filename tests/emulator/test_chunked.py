"""The chunked upload API (protocol §2.7) over real HTTP."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator import EmulatorServer
from tests.emulator.factories import bearer, heartbeat, lease_task
from tests.support.emulator import StartEmulator

DOMAIN = str(uuid.uuid4())
MULTIPART = f"/api/v1/domains/{DOMAIN}/data/multipart"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def small_parts(start_emulator: StartEmulator) -> EmulatorServer:
    """An emulator that hands out 5-byte parts."""
    return start_emulator(part_size=5)


@pytest.fixture
def client(small_parts: EmulatorServer) -> Iterator[httpx.Client]:
    """A client of `small_parts` already carrying a domain bearer for DOMAIN."""
    token = small_parts.state.issue_domain_token(DOMAIN).token
    with httpx.Client(base_url=small_parts.base_url, headers=bearer(token)) as client:
        yield client


def _initiate(client: httpx.Client, **overrides: Any) -> httpx.Response:
    body = {
        "name": "big.bin",
        "data_type": "binary",
        "size": 12,
        "content_type": "application/octet-stream",
        "existing_id": None,
    }
    return client.post(MULTIPART, params={"uploads": ""}, json=body | overrides)


def _put(client: httpx.Client, upload_id: str, number: int, content: bytes) -> httpx.Response:
    params = {"uploadId": upload_id, "partNumber": str(number)}
    return client.put(MULTIPART, params=params, content=content, headers=OCTETS)


def _complete(client: httpx.Client, upload_id: str, parts: list[dict[str, Any]]) -> httpx.Response:
    return client.post(MULTIPART, params={"uploadId": upload_id}, json={"parts": parts})


def _upload_all(client: httpx.Client, upload_id: str, content: bytes) -> list[dict[str, Any]]:
    parts = []
    for number, start in enumerate(range(0, len(content), 5), start=1):
        response = _put(client, upload_id, number, content[start : start + 5])
        assert response.status_code == 200, response.text
        parts.append({"part_number": number, "etag": response.json()["etag"]})
    return parts


def test_round_trip(client: httpx.Client, small_parts: EmulatorServer) -> None:
    initiated = _initiate(client)
    assert initiated.status_code == 200
    upload_id = initiated.json()["upload_id"]
    assert initiated.json()["part_size"] == 5
    content = b"hello world!"
    parts = _upload_all(client, upload_id, content)
    assert parts[0]["etag"] == hashlib.md5(b"hello").hexdigest()
    done = _complete(client, upload_id, parts)
    assert done.status_code == 200, done.text
    meta = done.json()
    assert meta["name"] == "big.bin" and meta["data_type"] == "binary" and meta["size"] == 12
    assert meta["domain_id"] == DOMAIN
    raw = client.get(f"/api/v1/domains/{DOMAIN}/data/{meta['id']}", params={"raw": "true"})
    assert raw.content == content
    # The upload is gone once completed.
    assert _complete(client, upload_id, parts).status_code == 404


def test_update_by_existing_id_keeps_the_item(
    client: httpx.Client, small_parts: EmulatorServer
) -> None:
    item = small_parts.state.seed_data(DOMAIN, "refined_splat", "splat_data", b"old")
    # [PM] domain-http's generic path sends empty name/data_type with existing_id.
    upload_id = _initiate(client, name="", data_type="", size=7, existing_id=item.id).json()
    parts = _upload_all(client, upload_id["upload_id"], b"new one")
    meta = _complete(client, upload_id["upload_id"], parts).json()
    assert meta["id"] == item.id and meta["name"] == "refined_splat" and meta["size"] == 7
    assert small_parts.state.read_data(DOMAIN, item.id) == b"new one"


def test_part_size_never_exceeds_request_max_bytes(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(part_size=1000, request_max_bytes=64)
    token = emulator.state.issue_domain_token(DOMAIN).token
    with httpx.Client(base_url=emulator.base_url, headers=bearer(token)) as client:
        assert _initiate(client).json()["part_size"] == 64


def test_token_rotation_between_initiation_and_parts(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(part_size=5, rotate="always", revoke_superseded_tokens=True)
    with httpx.Client(base_url=emulator.base_url) as http:
        leased = lease_task(http)
        url = f"/api/v1/domains/{leased.domain_id}/data/multipart"
        body = {"name": "big.bin", "data_type": "binary", "size": 6, "existing_id": None}
        start = http.post(
            url, params={"uploads": ""}, json=body, headers=bearer(leased.domain_token)
        )
        upload_id = start.json()["upload_id"]
        new_token = heartbeat(http, leased).json()["access_token"]
        params = {"uploadId": upload_id, "partNumber": "1"}
        stale = http.put(url, params=params, content=b"abcde", headers=bearer(leased.domain_token))
        assert stale.status_code == 401
        parts = []
        for number, chunk in enumerate([b"abcde", b"f"], start=1):
            params = {"uploadId": upload_id, "partNumber": str(number)}
            put = http.put(url, params=params, content=chunk, headers=bearer(new_token))
            parts.append({"part_number": number, "etag": put.json()["etag"]})
        done = http.post(
            url, params={"uploadId": upload_id}, json={"parts": parts}, headers=bearer(new_token)
        )
    assert done.status_code == 200 and done.json()["size"] == 6


def test_abort(client: httpx.Client) -> None:
    upload_id = _initiate(client).json()["upload_id"]
    assert _put(client, upload_id, 1, b"abc").status_code == 200
    assert client.delete(MULTIPART, params={"uploadId": upload_id}).status_code == 204
    gone = _put(client, upload_id, 2, b"abc")
    assert gone.status_code == 404
    assert f"unknown upload {upload_id}" in gone.json()["detail"]
    assert client.delete(MULTIPART, params={"uploadId": upload_id}).status_code == 404
    missing = client.delete(MULTIPART)
    assert missing.status_code == 400 and "needs ?uploadId" in missing.json()["detail"]


def test_initiation_errors(client: httpx.Client, small_parts: EmulatorServer) -> None:
    bad_name = _initiate(client, name="a/b")
    assert bad_name.status_code == 400
    assert bad_name.json()["detail"] == "name contains disallowed character '/'"
    unnamed = _initiate(client, name="")
    assert unnamed.status_code == 400
    assert unnamed.json()["detail"] == "name must be 1–128 bytes long (got 0)"
    unknown = _initiate(client, existing_id=str(uuid.uuid4()))
    assert unknown.status_code == 404
    small_parts.state.seed_data(DOMAIN, "big.bin", "binary", b"x")
    duplicate = _initiate(client)
    assert duplicate.status_code == 409
    neither = client.post(MULTIPART, json={})
    assert neither.status_code == 400
    assert "needs ?uploads (start) or ?uploadId" in neither.json()["detail"]
    negative = _initiate(client, name="n2", size=-1)
    assert negative.status_code == 400 and "size" in negative.json()["detail"]


def test_declared_size_over_the_item_limit_is_413(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(domain_data_max_bytes=10)
    token = emulator.state.issue_domain_token(DOMAIN).token
    with httpx.Client(base_url=emulator.base_url, headers=bearer(token)) as client:
        response = _initiate(client, size=11)
    assert response.status_code == 413
    assert response.json()["detail"] == "item 'big.bin' is 11 bytes; domain_data_max_bytes is 10"


def test_parts_beyond_the_item_limit_are_413(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(domain_data_max_bytes=8, part_size=5)
    token = emulator.state.issue_domain_token(DOMAIN).token
    with httpx.Client(base_url=emulator.base_url, headers=bearer(token)) as client:
        upload_id = _initiate(client, size=None).json()["upload_id"]
        assert _put(client, upload_id, 1, b"12345").status_code == 200
        response = _put(client, upload_id, 2, b"12345")
    assert response.status_code == 413
    assert "domain_data_max_bytes is 8" in response.json()["detail"]


def test_part_errors(client: httpx.Client) -> None:
    upload_id = _initiate(client).json()["upload_id"]
    too_big = _put(client, upload_id, 1, b"123456")
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "part is 6 bytes; the limit is 5"
    empty = _put(client, upload_id, 1, b"")
    assert empty.status_code == 400 and empty.json()["detail"] == "a part must not be empty"
    zero = _put(client, upload_id, 0, b"1")
    assert zero.status_code == 400
    assert zero.json()["detail"] == "partNumber must be 1–10000, got 0"
    no_number = client.put(MULTIPART, params={"uploadId": upload_id}, content=b"1")
    assert no_number.status_code == 400
    assert "needs ?uploadId=…&partNumber=<integer>" in no_number.json()["detail"]


def test_completion_errors(client: httpx.Client) -> None:
    upload_id = _initiate(client).json()["upload_id"]
    parts = _upload_all(client, upload_id, b"hello world!")
    cases = [
        (parts[::-1], "ascending part_number order without repeats"),
        ([parts[0], parts[0], parts[2]], "ascending part_number order without repeats"),
        ([*parts, {"part_number": 4, "etag": "x"}], "part 4 was never uploaded"),
        ([parts[0] | {"etag": "nope"}, *parts[1:]], "etag of part 1 does not match"),
        ([parts[0], parts[1]], "parts hold 10 bytes but the upload declared 12"),
        ([], "parts: List should have at least 1 item"),
    ]
    for listed, detail in cases:
        response = _complete(client, upload_id, listed)
        assert response.status_code == 400, detail
        assert detail in response.json()["detail"]
    # A short part in the middle.
    assert _put(client, upload_id, 2, b"abc").status_code == 200
    etag = hashlib.md5(b"abc").hexdigest()
    middle = [parts[0], {"part_number": 2, "etag": etag}, parts[2]]
    response = _complete(client, upload_id, middle)
    assert response.status_code == 400
    assert "part 2 is 3 bytes; every part but the last must be part_size (5)" in response.text


def test_quoted_etags_are_accepted(client: httpx.Client) -> None:
    upload_id = _initiate(client, size=3).json()["upload_id"]
    etag = _put(client, upload_id, 1, b"abc").json()["etag"]
    done = _complete(client, upload_id, [{"part_number": 1, "etag": f'"{etag}"'}])
    assert done.status_code == 200


def test_disabled_chunked_api_answers_501(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(multipart_enabled=False)
    token = emulator.state.issue_domain_token(DOMAIN).token
    with httpx.Client(base_url=emulator.base_url, headers=bearer(token)) as client:
        info = client.get("/api/v1/info").json()
        response = _initiate(client)
    assert info["upload"]["multipart"] == {"enabled": False}
    assert response.status_code == 501
    assert response.json()["detail"] == "chunked uploads are disabled on this server"


def test_uploads_are_scoped_to_their_domain(
    client: httpx.Client, small_parts: EmulatorServer
) -> None:
    upload_id = _initiate(client).json()["upload_id"]
    other = str(uuid.uuid4())
    token = small_parts.state.issue_domain_token(other).token
    response = client.put(
        f"/api/v1/domains/{other}/data/multipart",
        params={"uploadId": upload_id, "partNumber": "1"},
        content=b"abc",
        headers=bearer(token),
    )
    assert response.status_code == 404


def test_chunked_api_needs_a_bearer(emulator: EmulatorServer) -> None:
    response = httpx.post(f"{emulator.base_url}{MULTIPART}?uploads", json={})
    assert response.status_code == 401
