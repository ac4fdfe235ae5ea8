"""Protocol §4.6: the multipart download parser (cases 20–22), and the upload body writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain_client import ProtocolViolation
from domain_client.multipart import (
    MultipartReader,
    PartData,
    PartEnd,
    PartEvent,
    PartStart,
    UploadPart,
    boundary_from_content_type,
    build_upload_body,
    find_header_end,
    parse_part_headers,
)
from tests.domain_client.factories import multipart_body

ITEMS = [
    (
        {"name": "first", "data-type": "json", "id": "id-1", "domain-id": "dom1"},
        b'{"test": "test"}',
    ),
    (
        {"name": "second", "data-type": "json", "id": "id-2", "domain-id": "dom1"},
        b'{"test": "test updated"}',
    ),
]


def collect(reader: MultipartReader, chunks: list[bytes]) -> list[tuple[str, bytes]]:
    """Feed chunks; return (id, content) per completed part, checking event order."""
    events: list[PartEvent] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    reader.finish()
    items: list[tuple[str, bytes]] = []
    current: tuple[str, bytearray] | None = None
    for event in events:
        if isinstance(event, PartStart):
            assert current is None
            current = (event.metadata.id, bytearray())
        elif isinstance(event, PartData):
            assert current is not None
            current[1].extend(event.data)
        else:
            assert isinstance(event, PartEnd) and current is not None
            items.append((current[0], bytes(current[1])))
            current = None
    return items


def test_case_20_boundary_search_and_header_end() -> None:
    crlf, lf = b"Content-Disposition: x\r\nA: b", b"Content-Disposition: x\nA: b"
    assert find_header_end(crlf + b"\r\n\r\nbody") == (len(crlf), len(crlf) + 4)
    assert find_header_end(lf + b"\n\nbody") == (len(lf), len(lf) + 2)
    assert find_header_end(b"Content-Disposition: x\r\nA: b\r\n") is None
    assert find_header_end(b"\r\nbody") == (0, 2)  # no headers at all
    # The boundary is found even when split across chunks, after a preamble.
    body = b"preamble--BOUND" + multipart_body("BOUNDARY", ITEMS[:1])[len(b"--BOUND") :]
    assert collect(MultipartReader("BOUNDARY"), [body[:12], body[12:]]) == [
        ("id-1", b'{"test": "test"}')
    ]
    truncated = multipart_body("BOUNDARY", ITEMS)[:-30]
    with pytest.raises(ProtocolViolation, match="incomplete multipart body"):
        collect(MultipartReader("BOUNDARY"), [truncated])
    with pytest.raises(
        ProtocolViolation,
        match="incomplete multipart body: stream ended inside "
        r"the headers of part 1",
    ):
        collect(MultipartReader("BOUNDARY"), [b"--BOUNDARY\r\nContent-Disposition: form-data"])


def test_case_21_header_parsing() -> None:
    block = (
        b'content-disposition: form-data; size="16"; updated-at="2024-01-02T03:04:06Z"; '
        b'name="scan_2024-01-02_03-04-05"; id="abc"; data-type="refined_scan_zip"; '
        b'domain-id="dom1"; created-at="2024-01-02T03:04:05.123456789Z"\r\n'
        b"Content-Type: application/octet-stream"
    )
    meta = parse_part_headers(block)
    assert (meta.id, meta.domain_id, meta.name, meta.data_type, meta.size) == (
        "abc",
        "dom1",
        "scan_2024-01-02_03-04-05",
        "refined_scan_zip",
        16,
    )
    assert meta.created_at == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert meta.updated_at == datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC)
    with pytest.raises(ProtocolViolation, match="no Content-Disposition"):
        parse_part_headers(b"Content-Type: application/octet-stream")
    with pytest.raises(ProtocolViolation, match="invalid size 'ten'"):
        parse_part_headers(b'Content-Disposition: form-data; id="a"; size="ten"')


def test_case_22_chunking_anywhere_yields_both_items() -> None:
    body = multipart_body("BOUNDARY", ITEMS, newline="\n")
    expected = [("id-1", b'{"test": "test"}'), ("id-2", b'{"test": "test updated"}')]
    assert collect(MultipartReader("BOUNDARY"), [body]) == expected  # both in one chunk
    headers_at = body.index(b"data-type")
    content_at = body.index(b"test updated")
    for split in (headers_at, content_at):
        assert collect(MultipartReader("BOUNDARY"), [body[:split], body[split:]]) == expected
    for split in range(1, len(body)):  # every single split point
        assert collect(MultipartReader("BOUNDARY"), [body[:split], body[split:]]) == expected
    assert collect(MultipartReader("BOUNDARY"), [bytes([b]) for b in body]) == expected


def test_binary_content_containing_the_boundary_is_safe() -> None:
    content = b"\r\n--BOUNDARY--\r\n--BOUNDARY\r\n"
    body = multipart_body("BOUNDARY", [({"id": "x"}, content)])
    assert collect(MultipartReader("BOUNDARY"), [body]) == [("x", content)]


def test_size_that_does_not_match_content_is_a_clear_error() -> None:
    body = multipart_body("BOUNDARY", [({"id": "x", "size": "3"}, b"abcdef")])
    with pytest.raises(ProtocolViolation, match="its size does not match its content"):
        collect(MultipartReader("BOUNDARY"), [body])


def test_only_the_closing_delimiter_means_no_items() -> None:
    reader = MultipartReader("BOUNDARY")
    assert collect(reader, [b"--BOUND", b"ARY--\r\n"]) == []
    assert reader.parts == 0


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/mixed; boundary=x", "multipart/form-data;boundary=x"],
)
def test_download_content_type_must_start_with_the_exact_prefix(content_type: str | None) -> None:
    with pytest.raises(ProtocolViolation, match="Invalid content-type header"):
        boundary_from_content_type(content_type)
    assert boundary_from_content_type("multipart/form-data; boundary=abc123") == "abc123"


def test_upload_body_layout_and_fresh_boundary() -> None:
    content_type, body = build_upload_body([UploadPart.create("splat", "splat_data", b"xyz")])
    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert boundary.startswith("auki-") and len(boundary) == 41
    assert (
        body
        == (
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f'Content-Disposition: form-data; name="splat"; data-type="splat_data"\r\n\r\n'
            f"xyz\r\n--{boundary}--\r\n"
        ).encode()
    )
    _, update = build_upload_body([UploadPart.update("id-1", b"new")])
    assert b'Content-Disposition: form-data; id="id-1"\r\n' in update
    _, quoted = build_upload_body([UploadPart.create('a"b\\c', "t", b"x")])
    assert b'name="a\\"b\\\\c"' in quoted
