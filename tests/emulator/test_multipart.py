"""multipart/form-data encoding (downloads) and parsing (uploads), in-process."""

from __future__ import annotations

import random

import pytest

from emulator.multipart import (
    DownloadPart,
    MultipartError,
    boundary_from_content_type,
    encode_download,
    parse_form_data,
    parse_header_params,
)
from tests.emulator.factories import parse_download, upload_body


def test_header_params_with_quotes_escapes_and_tokens() -> None:
    kind, params = parse_header_params(
        'Form-Data; NAME="a\\"b\\\\c"; data-type=json ; size = "3"; name="ignored"'
    )
    assert kind == "form-data"
    assert params == {"name": 'a"b\\c', "data-type": "json", "size": "3"}


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ('form-data; name="open', "unterminated quoted"),
        ("form-data; name", "has no '=value'"),
        ('form-data; name=a"b', "stray quote"),
    ],
)
def test_malformed_header_params(value: str, detail: str) -> None:
    with pytest.raises(MultipartError) as caught:
        parse_header_params(value)
    assert detail in str(caught.value)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ('Multipart/Form-Data; boundary="with space:and=more"', "with space:and=more"),
        ("multipart/form-data; charset=utf-8; boundary=auki-1234", "auki-1234"),
    ],
)
def test_boundary_from_content_type(content_type: str, boundary: str) -> None:
    assert boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        (None, "Content-Type multipart/form-data with a boundary is required"),
        ("text/plain; boundary=a", "must be multipart/form-data, got 'text/plain'"),
        ("multipart/form-data; boundary=" + "a" * 71, "1–70 RFC 2046 characters"),
        ('multipart/form-data; boundary="ends with space "', "1–70 RFC 2046 characters"),
    ],
)
def test_bad_content_types(content_type: str | None, detail: str) -> None:
    with pytest.raises(MultipartError) as caught:
        boundary_from_content_type(content_type)
    assert detail in str(caught.value)


def test_random_uploads_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(50):
        boundary = f"auki-{rng.getrandbits(64):016x}"
        contents = [rng.randbytes(rng.randrange(0, 300)) for _ in range(rng.randrange(1, 4))]
        contents = [c.replace(boundary.encode(), b"") for c in contents]
        params = [{"name": f"n{i}", "data-type": "bin"} for i in range(len(contents))]
        body = upload_body(list(zip(params, contents, strict=True)), boundary)
        parts = parse_form_data(body, boundary)
        assert [part.content for part in parts] == contents
        assert [part.params for part in parts] == params
        assert parts[0].headers["content-type"] == "application/octet-stream"


def test_near_miss_delimiters_stay_content() -> None:
    content = b"x\r\n--bndX\r\n--bnd-not\r\n--bn\r\n"
    body = upload_body([({"name": "a", "data-type": "b"}, content)], "bnd")
    assert parse_form_data(body, "bnd")[0].content == content


def test_transport_padding_after_delimiters() -> None:
    body = b'--b  \r\nContent-Disposition: form-data; name="a"\r\n\r\nxy\r\n--b-- \r\n'
    assert parse_form_data(body, "b")[0].content == b"xy"


def test_delimiter_without_line_break_is_an_error() -> None:
    body = b'--bjunk\r\nContent-Disposition: form-data; name="a"\r\n\r\nxy\r\n--b--\r\n'
    with pytest.raises(MultipartError, match="not followed by a line break"):
        parse_form_data(body, "b")


def test_non_form_data_disposition_is_an_error() -> None:
    body = b'--b\r\nContent-Disposition: attachment; name="a"\r\n\r\nxy\r\n--b--\r\n'
    with pytest.raises(MultipartError, match="disposition must be form-data"):
        parse_form_data(body, "b")


def test_header_line_without_colon_is_an_error() -> None:
    body = b"--b\r\nnot a header\r\n\r\nxy\r\n--b--\r\n"
    with pytest.raises(MultipartError, match="malformed multipart part header line"):
        parse_form_data(body, "b")


def test_downloads_encode_to_the_reference_layout() -> None:
    rng = random.Random(11)
    boundary = "0123456789abcdef" * 3 + "0123456789ab"
    items = []
    for index in range(5):
        content = rng.randbytes(rng.randrange(0, 2000))
        if index == 2:
            content += f"\r\n--{boundary}--\r\n".encode()
        part = DownloadPart(f"n{index}", "t", f"id{index}", "dom", len(content), "c", "u")
        items.append((part, content))
    body = b"".join(encode_download(((part, [c[:7], c[7:]]) for part, c in items), boundary))
    parsed = parse_download(body, boundary)
    assert [p.content for p in parsed] == [content for _, content in items]
    assert parsed[3].params == {
        "name": "n3",
        "data-type": "t",
        "id": "id3",
        "domain-id": "dom",
        "size": str(len(items[3][1])),
        "created-at": "c",
        "updated-at": "u",
    }
