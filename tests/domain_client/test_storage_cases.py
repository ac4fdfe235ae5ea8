"""Protocol §4.5: domain storage — downloads, upserts, chunked uploads, token rotation and
status mapping (cases 12–19)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import respx

from domain_client import (
    BadRequestError,
    ConflictError,
    DomainClient,
    DomainToken,
    NotFoundError,
    ResponseError,
    RetryPolicy,
    ServerError,
    TaskStorage,
    UnauthorizedError,
)
from domain_client.storage import DownloadMode
from tests.domain_client.factories import (
    BASE,
    fallback_404,
    json_of,
    metadata_json,
    multipart_body,
)

pytestmark = pytest.mark.anyio

DATA = "/api/v1/domains/dom1/data"
NO_RETRY = RetryPolicy(attempts=1)


def storage_for(
    http: httpx.AsyncClient,
    token: DomainToken,
    *,
    mode: DownloadMode = "list_raw",
    retry: RetryPolicy = NO_RETRY,
) -> TaskStorage:
    domain = DomainClient(http, BASE, "dom1", token, "client-1", retry=retry)
    return TaskStorage(domain, "task-456", "out", download_mode=mode)


def two_item_multipart() -> bytes:
    return multipart_body(
        "BOUNDARY",
        [
            (
                {
                    "name": "scan_2024-01-02_03-04-05",
                    "data-type": "refined_scan_zip",
                    "id": "bafy-123",
                    "domain-id": "dom1",
                    "created-at": "2024-01-02T03:04:05Z",
                    "updated-at": "2024-01-02T03:04:05.123456789Z",
                },
                b"PK\x03\x04zip-bytes",
            ),
            (
                {
                    "name": "manifest",
                    "data-type": "dmt_manifest_json",
                    "id": "manifest-1",
                    "domain-id": "dom1",
                    "created-at": "2024-01-02T03:04:05Z",
                    "updated-at": "2024-01-02T03:04:05Z",
                },
                b'{"dataIDs": []}',
            ),
        ],
    )


async def test_case_12_download_by_cid_url_multipart_and_upsert(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = storage_for(http, DomainToken("tkn"), mode="multipart")
    bearer = {"authorization": "Bearer tkn"}
    with respx.mock(base_url=BASE) as mock:
        mock.get(
            DATA, params={"ids": "bafy-123"}, headers={**bearer, "accept": "multipart/form-data"}
        ).respond(
            200,
            content=two_item_multipart(),
            headers={"content-type": "multipart/form-data; boundary=BOUNDARY"},
        )
        lookup = mock.get(
            DATA,
            params={"name": "out_job_manifest_json_task-456", "data_type": "json"},
            headers={**bearer, "accept": "application/json"},
        ).respond(200, json={"data": []})
        create = mock.post(DATA, headers=bearer, content__contains=b"job_manifest_").respond(
            200, json={"data": [metadata_json("data-123", "x", "json", 3, "dom1")]}
        )
        update = mock.put(DATA, headers=bearer, content__contains=b'id="data-123"').respond(
            200, json={"data": [metadata_json("data-123", "x", "json", 7, "dom1")]}
        )
        fallback_404(mock)  # no /api/v1/info: "no info", single-request uploads

        got = await storage.materialize(f"{BASE}/api/v1/domains/dom1/data/bafy-123", tmp_path)
        first = await storage.put_bytes("job_manifest.json", b"bin")
        second = await storage.put_bytes("job_manifest.json", b"updated")

    assert got.primary.path.read_bytes() == b"PK\x03\x04zip-bytes"
    meta = got.primary.metadata
    assert (meta.id, meta.data_type, meta.name) == (
        "bafy-123",
        "refined_scan_zip",
        "scan_2024-01-02_03-04-05",
    )
    assert got.primary.path.name == "scan_2024-01-02_03-04-05.refined_scan_zip"
    assert [item.path.name for item in got.related] == ["manifest.dmt_manifest_json"]
    assert got.related[0].path.read_bytes() == b'{"dataIDs": []}'
    assert (lookup.call_count, create.call_count, update.call_count) == (1, 1, 1)
    assert first.id == second.id == "data-123"
    assert [(a.logical_path, a.id) for a in storage.artifacts()] == [
        ("out/job_manifest.json", "data-123")
    ]


async def test_case_13_update_through_lookup(http: httpx.AsyncClient) -> None:
    storage = storage_for(http, DomainToken("tkn"))
    with respx.mock(base_url=BASE) as mock:
        mock.get(DATA, params={"name": "result", "data_type": "json"}).respond(
            200, json={"data": [metadata_json("data-123", "result", "json", 2, "dom1")]}
        )
        update = mock.put(DATA, content__contains=b'id="data-123"').respond(
            200, json={"data": [metadata_json("data-123", "result", "json", 2, "dom1")]}
        )
        fallback_404(mock)
        record = await storage.put_domain_artifact("result.json", "result", "json", b"{}")
    assert update.call_count == 1
    assert record.id == "data-123" and record.logical_path == "out/result.json"


async def test_case_14_file_upload_uses_the_chunked_api(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = tmp_path / "RefinedScan.zip"
    source.write_bytes(b"zipdata")
    name = "out_refined_local_scan_a_RefinedScan_zip_task-456"
    storage = storage_for(http, DomainToken("tkn"))
    with respx.mock(base_url=BASE) as mock:
        mock.get(DATA, params={"name": name, "data_type": "zip_data"}).respond(
            200, json={"data": []}
        )
        initiate = mock.post(f"{DATA}/multipart", params={"uploads": ""}).respond(
            200, json={"upload_id": "up1", "part_size": 1024}
        )
        part = mock.put(
            f"{DATA}/multipart", params={"uploadId": "up1", "partNumber": "1"}, content=b"zipdata"
        ).respond(200, json={"etag": "etag-1"})
        complete = mock.post(
            f"{DATA}/multipart", params={"uploadId": "up1"}, content__contains=b'"parts"'
        ).respond(200, json={"id": "data-zip"})
        record = await storage.put_file("refined/local/scan_a/RefinedScan.zip", source)

    sent = json_of(initiate.calls.last.request.content)
    assert sent["name"] == name and sent["data_type"] == "zip_data" and sent["size"] == 7
    assert part.call_count == complete.call_count == 1
    assert (record.logical_path, record.data_type, record.id) == (
        "out/refined/local/scan_a/RefinedScan.zip",
        "zip_data",
        "data-zip",
    )


async def test_case_15_token_rotation_between_requests(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = DomainToken("tA")
    storage = storage_for(http, token)
    with respx.mock(base_url=BASE) as mock:
        for data_id, bearer in (("a", "tA"), ("b", "tB")):
            auth = {"authorization": f"Bearer {bearer}"}
            mock.get(DATA, params={"ids": data_id}, headers=auth).respond(
                200, json={"data": [metadata_json(data_id, f"item_{data_id}", "bin", 1, "dom1")]}
            )
            mock.get(f"{DATA}/{data_id}", params={"raw": "true"}, headers=auth).respond(
                200, content=data_id.encode()
            )
        mock.get(DATA, params={"name": "up", "data_type": "json"}).respond(404)
        upload = mock.post(DATA, headers={"authorization": "Bearer tB"}).respond(
            200, json={"data": [metadata_json("u1", "up", "json", 2, "dom1")]}
        )
        fallback_404(mock)
        first = await storage.materialize(f"{BASE}/api/v1/domains/dom1/data/a", tmp_path)
        token.set("tB")
        second = await storage.materialize(f"{BASE}/api/v1/domains/dom1/data/b", tmp_path)
        await storage.put_domain_artifact("up.json", "up", "json", b"{}")
    assert first.primary.path.read_bytes() == b"a" and second.primary.path.read_bytes() == b"b"
    assert upload.call_count == 1


async def test_case_16_token_rotation_inside_a_chunked_upload(http: httpx.AsyncClient) -> None:
    token = DomainToken("tA")
    storage = storage_for(http, token)
    storage.outputs_prefix = None
    received, rotated = asyncio.Event(), asyncio.Event()
    tb = {"authorization": "Bearer tB"}

    async def hold_until_rotated(request: httpx.Request) -> httpx.Response:
        received.set()
        await rotated.wait()
        return httpx.Response(200, json={"upload_id": "u1", "part_size": 5})

    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/info").respond(
            200, json={"upload": {"request_max_bytes": 1, "multipart": {"enabled": True}}}
        )
        mock.get(DATA, params={"name": "big.bin", "data_type": "binary"}).respond(404)
        initiate = mock.post(
            f"{DATA}/multipart",
            params={"uploads": ""},
            headers={"authorization": "Bearer tA"},
            json={
                "name": "big.bin",
                "data_type": "binary",
                "size": 12,
                "content_type": "application/octet-stream",
                "existing_id": None,
            },
        ).mock(side_effect=hold_until_rotated)
        parts = [
            mock.put(
                f"{DATA}/multipart",
                params={"uploadId": "u1", "partNumber": str(n)},
                headers=tb,
                content=body,
            ).respond(200, json={"etag": f"etag-{n}"})
            for n, body in ((1, b"hello"), (2, b" worl"), (3, b"d!"))
        ]
        complete = mock.post(
            f"{DATA}/multipart",
            params={"uploadId": "u1"},
            headers=tb,
            json={"parts": [{"part_number": n, "etag": f"etag-{n}"} for n in (1, 2, 3)]},
        ).respond(200, json={"id": "data-123"})

        upload = asyncio.create_task(
            storage.put_domain_artifact("big.bin", "big.bin", "binary", b"hello world!")
        )
        await received.wait()
        token.set("tB")
        rotated.set()
        record = await upload
    assert initiate.call_count == 1
    assert [p.call_count for p in parts] == [1, 1, 1] and complete.call_count == 1
    assert record.id == "data-123"


EXPECTED_ERRORS: list[tuple[int, type[ResponseError], str]] = [
    (400, BadRequestError, "bad request (400)"),
    (401, UnauthorizedError, "unauthorized (401)"),
    (404, NotFoundError, "not found (404)"),
    (409, ConflictError, "conflict (409)"),
    (500, ServerError, "server error (500)"),
]


async def test_case_17_download_error_mapping(http: httpx.AsyncClient, tmp_path: Path) -> None:
    for mode in ("list_raw", "multipart"):
        storage = storage_for(http, DomainToken("tkn"), mode=mode)
        with respx.mock(base_url=BASE) as mock:
            for status, _, _ in EXPECTED_ERRORS:
                mock.get(DATA, params={"ids": f"c{status}"}).respond(status, json={"error": "x"})
            for status, kind, text in EXPECTED_ERRORS:
                with pytest.raises(kind) as caught:
                    await storage.materialize(f"c{status}", tmp_path)
                assert str(caught.value) == text and caught.value.status == status
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (no half-made download folder is left)


async def test_case_18_empty_multipart_is_not_found(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = storage_for(http, DomainToken("tkn"), mode="multipart")
    with respx.mock(base_url=BASE) as mock:
        mock.get(DATA, params={"ids": "nothing"}).respond(
            200,
            content=b"--BOUNDARY--\r\n",
            headers={"content-type": "multipart/form-data; boundary=BOUNDARY"},
        )
        with pytest.raises(NotFoundError, match=r"^not found \(404\)$"):
            await storage.materialize("nothing", tmp_path)


async def test_case_19_upload_error_mapping(http: httpx.AsyncClient) -> None:
    domain = DomainClient(http, BASE, "dom1", DomainToken("tkn"), "client-1", retry=NO_RETRY)
    for status, kind, text in EXPECTED_ERRORS:
        with respx.mock(base_url=BASE) as mock:
            route = mock.post(DATA).respond(status)
            with pytest.raises(kind) as caught:
                await domain.create("splat", "splat_data", b"bytes")
        assert str(caught.value) == text
        assert route.call_count == 1  # creates are never retried
