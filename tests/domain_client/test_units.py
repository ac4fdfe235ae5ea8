"""Unit tests of the small pieces: CIDs, timestamps, wire models, receipts, retry policy, lease
validation and info-driven upload path selection."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from domain_client import (
    BadRequestError,
    CompleteBody,
    DataMetadata,
    DomainClient,
    DomainToken,
    InvalidInputError,
    JobMeta,
    Lease,
    LeaseUpdate,
    ServerInfo,
    SiweToken,
    TaskStorage,
    parse_cid,
)
from domain_client._http import RetryPolicy
from domain_client.engine import poll_backoff_s
from domain_client.errors import NotFoundError, TransportError, error_for_status
from domain_client.lease import lease_problem
from domain_client.receipts import runner_failure_body, runner_failure_reason, truncate_utf8
from domain_client.storage import _exceeds_limits
from domain_client.timestamps import format_timestamp, parse_timestamp
from tests.domain_client.factories import BASE, CAPABILITY, lease_body, metadata_json, new_id

pytestmark = pytest.mark.anyio


# --- CIDs -------------------------------------------------------------------------------------


def test_cid_forms() -> None:
    uid = new_id()
    assert parse_cid(uid).ids == (uid,) and parse_cid(uid).domain_id is None
    url = parse_cid(f"https://ds.example/api/v1/domains/dom1/data/{uid}?ids=a,b&name=n")
    assert (url.ids, url.domain_id, url.host) == ((uid,), "dom1", "https://ds.example")
    query = parse_cid("https://ds.example/api/v1/domains/dom1/data?ids=a,b")
    assert query.ids == ("a", "b")
    named = parse_cid("/api/v1/domains/dom1/data?name=first&name=second&data_type=t")
    assert (named.ids, named.name, named.data_type, named.host) == ((), "first", "t", None)
    with pytest.raises(InvalidInputError, match="empty input cid"):
        parse_cid("  ")
    with pytest.raises(InvalidInputError, match="selects no item"):
        parse_cid("https://ds.example/api/v1/domains/dom1/data")


def test_strict_cids_refuse_non_uuid_ids() -> None:
    with pytest.raises(BadRequestError, match=r"^bad request \(400\): data id 'bafy-123'"):
        parse_cid("https://x/api/v1/domains/d/data/bafy-123", strict_ids=True)
    uid = new_id()
    assert parse_cid(uid, strict_ids=True).ids == (uid,)


async def test_cid_for_another_domain_uses_the_lease_domain(
    http: httpx.AsyncClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = TaskStorage(DomainClient(http, BASE, "lease-dom", DomainToken("t"), "c"), "t", None)
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/domains/lease-dom/data", params={"ids": "x"}).respond(
            200, json={"data": [metadata_json("x", "n", "t", 1, "lease-dom")]}
        )
        mock.get("/api/v1/domains/lease-dom/data/x", params={"raw": "true"}).respond(
            200, content=b"1"
        )
        got = await storage.materialize(
            "https://elsewhere.example/api/v1/domains/other/data/x", tmp_path
        )
    assert got.primary.path.read_bytes() == b"1"
    assert "names domain other; using the lease domain lease-dom" in caplog.text


async def test_materialize_with_no_match_is_not_found(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    storage = TaskStorage(DomainClient(http, BASE, "d", DomainToken("t"), "c"), "t", None)
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/domains/d/data").respond(200, json={"data": []})
        with pytest.raises(NotFoundError, match=r"^not found \(404\)$"):
            await storage.materialize("/api/v1/domains/d/data?name=x", tmp_path)


async def test_list_from_another_domain_is_a_protocol_violation(http: httpx.AsyncClient) -> None:
    domain = DomainClient(http, BASE, "d", DomainToken("t"), "c")
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/domains/d/data").respond(
            200, json={"data": [metadata_json("x", "n", "t", 1, "other")]}
        )
        with pytest.raises(Exception, match="belongs to domain other, not d"):
            await domain.list_metadata(ids=["x"])


async def test_list_ids_are_chunked_by_100(http: httpx.AsyncClient) -> None:
    domain = DomainClient(http, BASE, "d", DomainToken("t"), "c")
    ids = [f"id{n}" for n in range(250)]
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/api/v1/domains/d/data").respond(200, json={"data": []})
        await domain.list_metadata(ids=ids)
    sizes = [len(call.request.url.params["ids"].split(",")) for call in route.calls]
    assert sizes == [100, 100, 50]


async def test_every_domain_request_carries_the_client_id(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    domain = DomainClient(http, BASE, "d", DomainToken("t"), "my-client")
    with respx.mock(base_url=BASE) as mock:
        route = mock.route().respond(
            200, json={"data": [metadata_json("x", "n", "t", 1)], "upload": {}}
        )
        await domain.info()
        await domain.list_metadata(name="n")
        await domain.create("n", "t", b"x")
        await domain.update("x", b"y")
        await domain.delete("x")
    assert len(route.calls) == 5
    assert all(c.request.headers["posemesh-client-id"] == "my-client" for c in route.calls)


# --- timestamps and models --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-16T10:00:00.123456789Z", datetime(2026, 4, 16, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-04-16T10:00:00Z", datetime(2026, 4, 16, 10, tzinfo=UTC)),
        ("2026-04-16T12:00:00.5+02:00", datetime(2026, 4, 16, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-04-16T10:00:00.1234567+00:00", datetime(2026, 4, 16, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamps_with_up_to_nine_fractional_digits(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_timestamp_errors_and_format() -> None:
    for bad in ("2026-04-16", "2026-04-16T10:00:00", "2026-04-16T10:00:00.1234567890Z"):
        with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
            parse_timestamp(bad)
    assert format_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"


def test_lease_parsing_is_lenient() -> None:
    body = lease_body(cancel=None, unknown_field={"x": 1}, p2p_access_token="p")
    body["task"].update(
        inputs_cids=None,
        billing_units=12.5,
        debited_amount="3.0",
        priority=-4,
        lease_expires_at="2026-04-16T10:00:00.123456789Z",
    )
    lease = Lease.model_validate(body)
    assert lease.cancel is False and lease.task.inputs_cids == []
    assert lease.task.billing_units == "12.5" and lease.task.priority == -4


def test_lease_merge_keeps_absent_fields() -> None:
    lease = Lease.model_validate(lease_body(token="a"))
    merged = lease.merged(LeaseUpdate(job_id=None, attempts=2))
    assert merged.access_token == "a" and merged.task.job_id == lease.task.job_id
    assert merged.task.attempts == 2


def test_siwe_token_expiry_fallback() -> None:
    token = SiweToken.model_validate({"access_token": "t", "expires_at": "2026-01-01T00:00:00Z"})
    assert token.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expires_at"):
        SiweToken.model_validate({"access_token": "t"})


def test_siwe_token_null_access_expiry_falls_back_to_expires_at() -> None:
    # protocol §1.5 step 4: `access_expires_at`, "if absent, `expires_at` is used"; null is
    # absent (§1.6: null is accepted wherever a value is optional).
    body = {"access_token": "t", "access_expires_at": None, "expires_at": "2026-01-01T00:00:00Z"}
    assert SiweToken.model_validate(body).expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expires_at"):
        SiweToken.model_validate({"access_token": "t", "access_expires_at": None})


def test_metadata_accepts_id_only() -> None:
    assert DataMetadata.model_validate({"id": "x"}).name is None


# --- receipts ---------------------------------------------------------------------------------


def test_reason_is_cut_at_4096_bytes_on_a_character_boundary() -> None:
    reason = runner_failure_reason(RuntimeError("é" * 5000))
    assert len(reason.encode()) <= 4096 and reason.startswith("runner failed: éé")
    assert len(reason.encode()) >= 4095  # cut at most one 2-byte character short
    reason.encode().decode("utf-8")  # still valid UTF-8
    assert truncate_utf8("😀" * 3, 5) == "😀"
    assert truncate_utf8("short") == "short"


def test_reason_with_a_lone_surrogate_is_still_valid_utf8() -> None:
    # protocol §1.9 / §5 #19: the reason is at most 4096 bytes of UTF-8. A child's JSON event can
    # carry "\udcff" (an undecodable path); the fail body must still be built and encodable.
    message = json.loads('"cannot read /scans/a\\udcffb.mp4"')
    job = JobMeta(task_id="t", job_id=None, domain_id=None, capability=CAPABILITY)
    body = runner_failure_body(RuntimeError(message), job, [])
    assert body.reason == "runner failed: cannot read /scans/a?b.mp4"
    json.dumps(body.wire(), ensure_ascii=False).encode("utf-8")
    assert truncate_utf8("x\ud800" * 3000).encode("utf-8")[-1:] in (b"x", b"?")


def test_reason_uses_only_the_outermost_message() -> None:
    try:
        try:
            raise OSError("disk full")
        except OSError as inner:
            raise RuntimeError("upload x as y") from inner
    except RuntimeError as outer:
        assert runner_failure_reason(outer) == "runner failed: upload x as y"
    assert runner_failure_reason(ValueError()) == "runner failed: ValueError"


def test_oversized_details_become_null() -> None:
    job = JobMeta(task_id="t", job_id=None, domain_id=None, capability=CAPABILITY)
    from domain_client import ArtifactRecord

    many = [
        ArtifactRecord(logical_path=f"p{n}" * 50, name="n", data_type="t", id=str(n))
        for n in range(400)
    ]
    body = runner_failure_body(RuntimeError("x"), job, many)
    assert body.details is None and body.reason == "runner failed: x"
    small = runner_failure_body(RuntimeError("x"), job, many[:1])
    assert small.details["artifacts"][0]["id"] == "0"


def test_complete_body_keeps_nulls() -> None:
    job = JobMeta(task_id="t", job_id=None, domain_id=None, capability=CAPABILITY)
    assert CompleteBody.for_artifacts(job, []).wire() == {
        "output_cids": [],
        "meta": {
            "job": {"task_id": "t", "job_id": None, "domain_id": None, "capability": CAPABILITY},
            "artifacts": [],
        },
    }


# --- errors, retry policy, polling ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "bad request (400)"),
        (401, "unauthorized (401)"),
        (404, "not found (404)"),
        (409, "conflict (409)"),
        (502, "server error (502)"),
        (503, "server error (503)"),
        (403, "other storage error: unexpected status 403"),
        (302, "other storage error: unexpected status 302"),
    ],
)
def test_error_display_strings(status: int, text: str) -> None:
    assert str(error_for_status(status, b"secret body")) == text


def test_retry_delays_are_bounded_and_jittered() -> None:
    policy = RetryPolicy(base_delay_s=0.25, max_delay_s=1.0)
    rng = random.Random(0)
    for index, cap in enumerate([0.25, 0.5, 1.0, 1.0, 1.0]):
        delays = {policy.delay_s(index, rng) for _ in range(20)}
        assert all(cap / 2 <= d <= cap for d in delays) and len(delays) > 1
    assert policy.retryable(TransportError("x"))
    assert policy.retryable(error_for_status(503)) and not policy.retryable(error_for_status(400))


def test_poll_backoff_stays_within_bounds_even_when_reversed() -> None:
    rng = random.Random(5)
    draws = [poll_backoff_s(1000, 30000, rng) for _ in range(200)]
    assert min(draws) >= 1.0 and max(draws) <= 30.0 and max(draws) - min(draws) > 10
    reversed_draws = [poll_backoff_s(3000, 1000, rng) for _ in range(100)]
    assert all(1.0 <= d <= 3.0 for d in reversed_draws)


# --- lease validation (§5 #8) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"domain_id": None}, "lease missing domain_id"),
        ({"domain_server_url": None}, "lease missing domain_server_url"),
        ({"access_token": ""}, "lease missing access_token"),
        ({"access_token_expires_at": None}, "lease missing access_token_expires_at"),
        ({"lease_expires_at": None}, "lease missing lease_expires_at"),
        ({"lease_expires_at": "2020-01-01T00:00:00Z"}, "lease lease_expires_at is in the past"),
        (
            {"access_token_expires_at": "2020-01-01T00:00:00Z"},
            "lease access_token_expires_at is in the past",
        ),
        ({"cancel": True}, "lease is already cancelled"),
    ],
)
def test_lease_validation(changes: dict[str, Any], problem: str) -> None:
    lease = Lease.model_validate({**lease_body(), **changes})
    assert lease_problem(lease, datetime.now(UTC), timedelta(seconds=5)) == problem


def test_lease_expiry_falls_back_to_the_task_and_tolerates_skew() -> None:
    body = lease_body(lease_expires_at=None)
    body["task"]["lease_expires_at"] = format_timestamp(datetime.now(UTC) + timedelta(minutes=1))
    assert lease_problem(Lease.model_validate(body), datetime.now(UTC)) is None
    just_due = Lease.model_validate(
        lease_body(lease_expires_at=format_timestamp(datetime.now(UTC)))
    )
    assert lease_problem(just_due, datetime.now(UTC), timedelta(seconds=5)) is None


# --- upload path selection (§2.8, §5 #13) -----------------------------------------------------


@pytest.mark.parametrize(
    ("upload", "size", "chunked"),
    [
        ({"request_max_bytes": 1, "multipart": {"enabled": True}}, 12, True),
        ({"request_max_bytes": 1, "multipart": {"enabled": False}}, 12, False),
        ({"request_max_bytes": 0, "multipart": {"enabled": True}}, 12, False),
        ({"request_max_bytes": 10_000, "multipart": {"enabled": True}}, 12, False),
        ({"request_max_bytes": 1}, 12, True),  # no multipart key: try chunked, may fall back
        ({"request_max_bytes": 10_000, "domain_data_max_bytes": 5}, 12, True),
    ],
)
def test_bytes_go_chunked_only_when_a_request_cannot_hold_them(
    upload: dict[str, Any], size: int, chunked: bool
) -> None:
    info = ServerInfo.model_validate({"upload": upload})
    assert _exceeds_limits(info, "name", "type", b"x" * size) is chunked


async def test_chunked_404_falls_back_to_a_single_request(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"abc")
    storage = TaskStorage(DomainClient(http, BASE, "d", DomainToken("t"), "c"), "t", None)
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/domains/d/data").respond(404)
        initiate = mock.post("/api/v1/domains/d/data/multipart").respond(405)
        create = mock.post("/api/v1/domains/d/data", content__contains=b"abc").respond(
            200, json={"data": [metadata_json("new", "a", "t", 3)]}
        )
        record = await storage.put_domain_artifact("a.bin", "a", "t", source)
    assert initiate.call_count == create.call_count == 1 and record.id == "new"


async def test_empty_upload_is_refused_locally(http: httpx.AsyncClient, tmp_path: Path) -> None:
    domain = DomainClient(http, BASE, "d", DomainToken("t"), "c")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        anything = mock.route().respond(200)
        with pytest.raises(BadRequestError, match=r"^bad request \(400\): upload of 'n' is empty"):
            await domain.upload_chunked("n", "t", empty)
        with pytest.raises(BadRequestError, match="empty uploads are refused"):
            await domain.create("n", "t", b"")
    assert anything.call_count == 0


async def test_info_is_cached_and_404_means_no_info(http: httpx.AsyncClient) -> None:
    domain = DomainClient(http, BASE, "d", DomainToken("t"), "c")
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/api/v1/info").respond(404)
        assert await domain.info() is None and await domain.info() is None
    assert route.call_count == 1
    other = DomainClient(http, BASE, "d", DomainToken("t"), "c")
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v1/info").respond(200, text="not json")
        assert await other.info() is None
