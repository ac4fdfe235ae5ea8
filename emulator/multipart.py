"""`multipart/form-data` both ways, as the domain server speaks it.

Downloads (protocol §2.5): per item `--{boundary}` CRLF, a `Content-Disposition` header whose
quoted parameters carry the metadata (incl. `size`), `Content-Type: application/octet-stream`,
an empty line, exactly `size` content bytes, CRLF; finally `--{boundary}--` CRLF. Clients rely
on `size`, so content that happens to contain the boundary is delivered unharmed.

Uploads (§2.6): any RFC 2046 boundary, parts found by searching for the delimiter line, quoted
parameter values with backslash escapes, CRLF line endings (bare LF tolerated), preamble and
epilogue ignored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MULTIPART_FORM_DATA = "multipart/form-data"
_BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN_STOP = frozenset(';="')


class MultipartError(ValueError):
    """A malformed multipart body or header; the message says where it breaks."""


@dataclass(frozen=True)
class FormPart:
    """One part of an uploaded form: lowercased header names, disposition params, raw content."""

    headers: dict[str, str]
    disposition: str
    params: dict[str, str]
    content: bytes


# ---------------------------------------------------------------- header parameters


def quote(value: str) -> str:
    """A quoted-string with `\\` and `"` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a\\"b"; size=3` → (`form-data`, {name: `a"b`, size: `3`}).

    Parameter names are lowercased; values may be tokens or quoted strings with backslash
    escapes; the first occurrence of a repeated parameter wins.
    """
    head, _, _ = value.partition(";")
    params: dict[str, str] = {}
    pos = len(head)
    while pos < len(value):
        pos = _skip(value, pos, " \t;")
        if pos >= len(value):
            break
        key, pos = _read_until(value, pos, "=;")
        if pos >= len(value) or value[pos] != "=":
            raise MultipartError(f"header parameter {key.strip()!r} has no '=value'")
        item, pos = _read_value(value, _skip(value, pos + 1, " \t"))
        params.setdefault(key.strip().lower(), item)
    return head.strip().lower(), params


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _read_until(text: str, pos: int, stops: str) -> tuple[str, int]:
    start = pos
    while pos < len(text) and text[pos] not in stops:
        pos += 1
    return text[start:pos], pos


def _read_value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == '"':
        return _read_quoted(text, pos + 1)
    token, pos = _read_until(text, pos, ";")
    token = token.strip()
    if any(char in _TOKEN_STOP for char in token):
        raise MultipartError(f"unquoted header parameter value {token!r} has a stray quote")
    return token, pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise MultipartError("unterminated quoted header parameter value")


def boundary_from_content_type(content_type: str | None) -> str:
    """The boundary of a `multipart/form-data` Content-Type, validated per RFC 2046."""
    if not content_type:
        raise MultipartError("Content-Type multipart/form-data with a boundary is required")
    media_type, params = parse_header_params(content_type)
    if media_type != MULTIPART_FORM_DATA:
        raise MultipartError(f"Content-Type must be multipart/form-data, got {media_type!r}")
    boundary = params.get("boundary")
    if boundary is None:
        raise MultipartError("multipart/form-data Content-Type has no boundary parameter")
    if _BOUNDARY_CHARS.fullmatch(boundary) is None:
        raise MultipartError("multipart boundary must be 1–70 RFC 2046 characters")
    return boundary


# ---------------------------------------------------------------- download encoding


@dataclass(frozen=True)
class DownloadPart:
    """What one part of a download announces in its Content-Disposition, in this order."""

    name: str
    data_type: str
    id: str
    domain_id: str
    size: int
    created_at: str
    updated_at: str


def new_boundary() -> str:
    """60 random hex characters, like the real server's boundaries."""
    return secrets.token_hex(30)


def part_head(part: DownloadPart, boundary: str) -> bytes:
    """`--boundary` line, the two part headers and the empty line, CRLF throughout."""
    disposition = "; ".join(
        [
            "form-data",
            f"name={quote(part.name)}",
            f"data-type={quote(part.data_type)}",
            f"id={quote(part.id)}",
            f"domain-id={quote(part.domain_id)}",
            f'size="{part.size}"',
            f"created-at={quote(part.created_at)}",
            f"updated-at={quote(part.updated_at)}",
        ]
    )
    head = (
        f"--{boundary}\r\n"
        f"Content-Disposition: {disposition}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode("utf-8")


def closing_delimiter(boundary: str) -> bytes:
    """`--boundary--` CRLF."""
    return f"--{boundary}--\r\n".encode("ascii")


def encode_download(
    items: Iterable[tuple[DownloadPart, Iterable[bytes]]], boundary: str
) -> Iterator[bytes]:
    """Stream a download body: each item's head, its content chunks, CRLF; then the close."""
    for part, chunks in items:
        yield part_head(part, boundary)
        yield from chunks
        yield b"\r\n"
    yield closing_delimiter(boundary)


# ---------------------------------------------------------------- upload decoding


def parse_form_data(body: bytes, boundary: str) -> list[FormPart]:
    """Split an uploaded multipart body into parts (at least one)."""
    delimiter = b"--" + boundary.encode("ascii")
    pos, newline = _first_delimiter(body, delimiter)
    parts: list[FormPart] = []
    while True:
        pos, closed = _after_delimiter(body, pos, newline)
        if closed:
            break
        headers, pos = _read_headers(body, pos)
        end = _find_delimiter(body, newline + delimiter, pos)
        parts.append(_make_part(headers, body[pos:end]))
        pos = end + len(newline) + len(delimiter)
    if not parts:
        raise MultipartError("multipart body has no parts")
    return parts


def _first_delimiter(body: bytes, delimiter: bytes) -> tuple[int, bytes]:
    """Position just after the first delimiter, and the line ending the body uses."""
    if body.startswith(delimiter):
        start = len(delimiter)
    else:
        found = body.find(b"\n" + delimiter)
        if found < 0:
            raise MultipartError("multipart body does not contain the boundary from Content-Type")
        start = found + 1 + len(delimiter)
    line_end = body.find(b"\n", start)
    crlf = line_end > 0 and body[line_end - 1 : line_end] == b"\r"
    return start, b"\r\n" if crlf or line_end < 0 else b"\n"


def _after_delimiter(body: bytes, pos: int, newline: bytes) -> tuple[int, bool]:
    """Skip what follows a delimiter: `--` closes the body, else padding and a line ending."""
    if body.startswith(b"--", pos):
        return pos + 2, True
    while pos < len(body) and body[pos] in b" \t":
        pos += 1
    if body.startswith(b"\r\n", pos):
        return pos + 2, False
    if body.startswith(b"\n", pos):
        return pos + 1, False
    raise MultipartError("multipart delimiter line is not followed by a line break")


def _find_delimiter(body: bytes, marker: bytes, pos: int) -> int:
    """Next `newline--boundary` that is a real delimiter line (then `--`, padding or EOL)."""
    while True:
        found = body.find(marker, pos)
        if found < 0:
            raise MultipartError("multipart body ends without the closing delimiter")
        tail = body[found + len(marker) : found + len(marker) + 2]
        if tail.startswith((b"--", b"\r", b"\n", b" ", b"\t")):
            return found
        pos = found + 1


def _read_headers(body: bytes, pos: int) -> tuple[dict[str, str], int]:
    """Header lines up to the empty line; names lowercased, values stripped."""
    headers: dict[str, str] = {}
    while True:
        line_end = body.find(b"\n", pos)
        if line_end < 0:
            raise MultipartError("multipart part headers are not terminated by an empty line")
        line = body[pos:line_end].rstrip(b"\r").decode("utf-8", errors="replace")
        pos = line_end + 1
        if not line:
            return headers, pos
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed multipart part header line {line!r}")
        headers.setdefault(name.strip().lower(), value.strip())


def _make_part(headers: dict[str, str], content: bytes) -> FormPart:
    raw = headers.get("content-disposition")
    if raw is None:
        raise MultipartError("multipart part has no Content-Disposition header")
    disposition, params = parse_header_params(raw)
    if disposition != "form-data":
        raise MultipartError(f"multipart part disposition must be form-data, got {disposition!r}")
    return FormPart(headers=headers, disposition=disposition, params=params, content=content)
