"""Every upload step is retried (issue 10, "never lose work"), at the network edge (respx):
one 502 or timeout on the chunked start, on one part, on the completion (stored or not), on a
single-request create; ``Retry-After`` honoured; a non-idempotent write is looked up by name
before it is re-sent, so that no retry creates a duplicate; spent retries name step and item."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from domain_client import (
    DomainClient,
    DomainToken,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from domain_client.retry import outcome_unknown, parse_retry_after
from tests.domain_client.factories import BASE, metadata_json

pytestmark = pytest.mark.anyio

DATA = "/api/v1/domains/dom1/data"
MULTIPART = f"{DATA}/multipart"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICY = RetryPolicy(attempts=4, base_delay_s=0.5, max_delay_s=4.0, max_retry_after_s=60.0)
CONTENT = b"0123456789"  # three parts of part_size 4: 4 + 4 + 2 bytes
NAME = "refined_splat_x"
TYPE = "splat_data"


class Sleeps(list[float]):
    """Records each wait instead of sleeping."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def domain(http: httpx.AsyncClient, sleeps: Sleeps) -> DomainClient:
    return DomainClient(
        http,
        BASE,
        "dom1",
        DomainToken("tkn"),
        "client-1",
        retry=POLICY,
        rng=random.Random(7),
        sleep=sleeps,
        clock=NOW.timestamp,
    )


def started(mock: respx.MockRouter) -> respx.Route:
    return mock.post(MULTIPART, params={"uploads": ""}).respond(
        200, json={"upload_id": "u", "part_size": 4}
    )


def parts_ok(mock: respx.MockRouter) -> list[respx.Route]:
    return [
        mock.put(MULTIPART, params={"partNumber": str(n)}).respond(200, json={"etag": f"e{n}"})
        for n in (1, 2, 3)
    ]


def lookup(mock: respx.MockRouter, items: list[dict[str, object]]) -> respx.Route:
    return mock.get(DATA, params={"name": NAME, "data_type": TYPE}).respond(
        200, json={"data": items}
    )


def stored_item(data_id: str = "d", size: int = len(CONTENT)) -> dict[str, object]:
    return metadata_json(data_id, NAME, TYPE, size, "dom1")


def completion(mock: respx.MockRouter) -> respx.Route:
    return mock.post(MULTIPART, params={"uploadId": "u"})


def abort(mock: respx.MockRouter) -> respx.Route:
    return mock.delete(MULTIPART, params={"uploadId": "u"}).respond(204)


# --- the chunked start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(502), httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused")],
    ids=["502", "timeout", "connect-error"],
)
async def test_one_failure_on_start_is_retried(
    domain: DomainClient, sleeps: Sleeps, failure: httpx.Response | Exception
) -> None:
    with respx.mock(base_url=BASE) as mock:
        start = mock.post(MULTIPART, params={"uploads": ""}).mock(
            side_effect=[failure, httpx.Response(200, json={"upload_id": "u", "part_size": 4})]
        )
        parts = parts_ok(mock)
        done = completion(mock).respond(200, json={"id": "d"})
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert stored.id == "d" and start.call_count == 2
    assert [p.call_count for p in parts] == [1, 1, 1] and done.call_count == 1
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5  # first backoff: uniform(d/2, d)


# --- one part ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(502), httpx.ReadTimeout("read timed out")],
    ids=["502", "timeout"],
)
async def test_one_failure_on_one_part_retries_that_part_only(
    domain: DomainClient, failure: httpx.Response | Exception
) -> None:
    with respx.mock(base_url=BASE) as mock:
        start = started(mock)
        part1 = mock.put(MULTIPART, params={"partNumber": "1"}).respond(200, json={"etag": "e1"})
        part2 = mock.put(MULTIPART, params={"partNumber": "2"}).mock(
            side_effect=[failure, httpx.Response(200, json={"etag": "e2"})]
        )
        part3 = mock.put(MULTIPART, params={"partNumber": "3"}).respond(200, json={"etag": "e3"})
        done = completion(mock).respond(200, json={"id": "d"})
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert stored.id == "d"
    assert (start.call_count, part1.call_count, part2.call_count, part3.call_count) == (1, 1, 2, 1)
    assert [call.request.content for call in part2.calls] == [b"4567", b"4567"]
    assert json.loads(done.calls.last.request.content) == {
        "parts": [
            {"part_number": 1, "etag": "e1"},
            {"part_number": 2, "etag": "e2"},
            {"part_number": 3, "etag": "e3"},
        ]
    }


# --- the completion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(502), httpx.ReadTimeout("read timed out")],
    ids=["502", "timeout"],
)
async def test_completion_with_a_lost_answer_that_was_stored_is_not_resent(
    domain: DomainClient, failure: httpx.Response | Exception
) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(side_effect=[failure])
        found = lookup(mock, [stored_item("d")])
        aborted = abort(mock)
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert stored.id == "d" and stored.size == len(CONTENT)
    assert (done.call_count, found.call_count, aborted.call_count) == (1, 1, 0)


async def test_completion_502_that_was_not_stored_is_resent_once(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(
            side_effect=[httpx.Response(502), httpx.Response(200, json={"id": "d"})]
        )
        found = lookup(mock, [])
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert stored.id == "d" and (done.call_count, found.call_count) == (2, 1)
    assert done.calls[0].request.content == done.calls[1].request.content


async def test_lookup_ignores_older_items_and_other_sizes(domain: DomainClient) -> None:
    """An item that existed before the upload, or holds another size, is not this write."""
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json={"id": "new"})]
        )
        lookup(mock, [stored_item("old"), stored_item("other-size", size=3)])
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT, preexisting=["old"])
    assert stored.id == "new" and done.call_count == 2


async def test_lookup_404_counts_as_not_stored(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(
            side_effect=[httpx.Response(500), httpx.Response(200, json={"id": "d"})]
        )
        found = mock.get(DATA, params={"name": NAME}).respond(404)
        assert (await domain.upload_chunked(NAME, TYPE, CONTENT)).id == "d"
    assert (done.call_count, found.call_count) == (2, 1)


async def test_a_failing_lookup_never_resends_the_completion(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).respond(502)
        found = mock.get(DATA, params={"name": NAME}).respond(503)
        aborted = abort(mock)
        with pytest.raises(ServerError) as caught:
            await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert str(caught.value) == (
        f"server error (503): looking up {NAME!r} after chunked upload completion of "
        f"{NAME!r} had an unknown outcome"
    )
    assert isinstance(caught.value.__cause__, ServerError)
    assert (done.call_count, found.call_count, aborted.call_count) == (1, POLICY.attempts, 1)


async def test_update_completion_whose_upload_is_gone_is_confirmed_by_size(
    domain: DomainClient,
) -> None:
    """An update by id cannot duplicate: it is re-sent; a 404 then means the lost completion
    consumed the upload, confirmed by the item's size."""
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(side_effect=[httpx.Response(502), httpx.Response(404)])
        item = mock.get(f"{DATA}/old").respond(200, json=stored_item("old"))
        stored = await domain.upload_chunked(NAME, TYPE, CONTENT, existing_id="old")
    assert stored.id == "old" and (done.call_count, item.call_count) == (2, 1)


async def test_first_completion_404_is_not_taken_for_success(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        completion(mock).respond(404)
        aborted = abort(mock)
        with pytest.raises(Exception, match=r"^not found \(404\)$"):
            await domain.upload_chunked(NAME, TYPE, CONTENT, existing_id="old")
    assert aborted.call_count == 1


# --- single-request uploads --------------------------------------------------------------------


async def test_create_with_a_lost_answer_is_found_not_resent(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        post = mock.post(DATA).mock(side_effect=[httpx.ReadTimeout("read timed out")])
        found = lookup(mock, [stored_item("d")])
        stored = await domain.create(NAME, TYPE, CONTENT)
    assert stored.id == "d" and (post.call_count, found.call_count) == (1, 1)


async def test_create_refused_before_sending_is_resent_without_a_lookup(
    domain: DomainClient,
) -> None:
    """A connect error or a 429 provably left nothing on the server: no lookup needed."""
    with respx.mock(base_url=BASE) as mock:
        post = mock.post(DATA).mock(
            side_effect=[
                httpx.ConnectError("refused"),
                httpx.Response(429),
                httpx.Response(200, json={"data": [stored_item("d")]}),
            ]
        )
        stored = await domain.create(NAME, TYPE, CONTENT)
    assert stored.id == "d" and post.call_count == 3  # no GET route: a lookup would fail


async def test_create_502_not_stored_is_resent(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        post = mock.post(DATA).mock(
            side_effect=[
                httpx.Response(502),
                httpx.Response(200, json={"data": [stored_item("d")]}),
            ]
        )
        found = lookup(mock, [])
        assert (await domain.create(NAME, TYPE, CONTENT)).id == "d"
    assert (post.call_count, found.call_count) == (2, 1)


async def test_update_put_is_retried(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        put = mock.put(DATA).mock(
            side_effect=[
                httpx.Response(504),
                httpx.Response(200, json={"data": [stored_item("d")]}),
            ]
        )
        assert (await domain.update("d", CONTENT)).id == "d"
    assert put.call_count == 2


# --- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "waited"),
    [
        ("7", 7.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("3600", POLICY.max_retry_after_s),
    ],
    ids=["seconds", "http-date", "date-in-the-past", "capped"],
)
async def test_retry_after_is_honoured(
    domain: DomainClient, sleeps: Sleeps, header: str, waited: float
) -> None:
    with respx.mock(base_url=BASE) as mock:
        start = mock.post(MULTIPART, params={"uploads": ""}).mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": header}),
                httpx.Response(200, json={"upload_id": "u", "part_size": 4}),
            ]
        )
        parts_ok(mock)
        completion(mock).respond(200, json={"id": "d"})
        await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert start.call_count == 2 and sleeps == [waited]


def test_parse_retry_after() -> None:
    now = NOW.timestamp()
    assert parse_retry_after(" 12 ", now) == 12.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:15 GMT", now) == 10.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:15", now) is None  # no zone
    for bad in (None, "", "-5", "1.5", "soon"):
        assert parse_retry_after(bad, now) is None


def test_outcome_unknown_only_when_the_server_may_have_acted() -> None:
    from domain_client.errors import error_for_status

    assert outcome_unknown(error_for_status(502)) and outcome_unknown(TransportError("reset"))
    assert outcome_unknown(RequestTimeoutError("ReadTimeout"))
    assert not outcome_unknown(TransportError("refused", request_sent=False))
    assert not outcome_unknown(error_for_status(429)) and not outcome_unknown(error_for_status(400))


# --- retries exhausted -----------------------------------------------------------------------


async def test_exhausted_retries_on_a_part_name_the_step_and_the_item(
    domain: DomainClient, sleeps: Sleeps
) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        part1 = mock.put(MULTIPART, params={"partNumber": "1"}).respond(502)
        aborted = abort(mock)
        with pytest.raises(ServerError) as caught:
            await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert str(caught.value) == (
        f"server error (502): chunked upload part 1 of {NAME!r}: gave up after 4 attempts"
    )
    assert caught.value.status == 502 and isinstance(caught.value.__cause__, ServerError)
    assert part1.call_count == POLICY.attempts and aborted.call_count == 1
    assert len(sleeps) == POLICY.attempts - 1
    assert all(cap / 2 <= s <= cap for s, cap in zip(sleeps, [0.5, 1.0, 2.0], strict=True))


async def test_exhausted_timeouts_on_completion_look_up_before_every_resend(
    domain: DomainClient,
) -> None:
    with respx.mock(base_url=BASE) as mock:
        started(mock)
        parts_ok(mock)
        done = completion(mock).mock(side_effect=httpx.ReadTimeout("read timed out"))
        found = lookup(mock, [])
        aborted = abort(mock)
        with pytest.raises(RequestTimeoutError) as caught:
            await domain.upload_chunked(NAME, TYPE, CONTENT)
    assert str(caught.value) == (
        f"network error: timed out: chunked upload completion of {NAME!r}: ReadTimeout; "
        "gave up after 4 attempts"
    )
    # a lookup before each of the 3 re-sends, and one after the last attempt
    assert (done.call_count, found.call_count, aborted.call_count) == (4, 4, 1)


async def test_a_write_stored_by_its_last_attempt_is_found(domain: DomainClient) -> None:
    with respx.mock(base_url=BASE) as mock:
        post = mock.post(DATA).respond(502)
        found = mock.get(DATA, params={"name": NAME}).mock(
            side_effect=[httpx.Response(200, json={"data": []})] * 3
            + [httpx.Response(200, json={"data": [stored_item("d")]})]
        )
        stored = await domain.create(NAME, TYPE, CONTENT)
    assert stored.id == "d" and (post.call_count, found.call_count) == (4, 4)


async def test_a_single_attempt_policy_keeps_the_plain_error(http: httpx.AsyncClient) -> None:
    domain = DomainClient(
        http, BASE, "dom1", DomainToken("tkn"), "c", retry=RetryPolicy(attempts=1)
    )
    with respx.mock(base_url=BASE) as mock:
        post = mock.post(DATA).respond(502)
        with pytest.raises(ServerError, match=r"^server error \(502\)$"):
            await domain.create(NAME, TYPE, CONTENT)
    assert post.call_count == 1


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    assert 501 not in RetryPolicy().statuses and 502 in RetryPolicy().statuses
