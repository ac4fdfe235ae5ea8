"""The domain server's multipart formats (protocol §2.5 and §2.6).

:class:`MultipartReader` parses a ``multipart/form-data`` download incrementally: feed it network
chunks of any size, split anywhere, and it emits part starts (with metadata), content slices and
part ends. Content length comes from each part's ``size`` parameter, never from searching the
next boundary, so binary content that contains the boundary is safe. :func:`build_upload_body`
writes the single-request upload body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain_client.errors import ProtocolViolation
from domain_client.models import DataMetadata
from domain_client.timestamps import parse_timestamp

__all__ = [
    "CONTENT_TYPE_PREFIX",
    "MultipartReader",
    "PartData",
    "PartEnd",
    "PartEvent",
    "PartStart",
    "UploadPart",
    "boundary_from_content_type",
    "build_upload_body",
    "find_header_end",
    "parse_part_headers",
]

CONTENT_TYPE_PREFIX = "multipart/form-data; boundary="
MAX_HEADER_BYTES = 64 * 1024
_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True)
class PartStart:
    """A part's headers were read; its content follows."""

    metadata: DataMetadata


@dataclass(frozen=True)
class PartData:
    """A slice of the current part's content."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part's ``size`` bytes were all delivered."""


PartEvent = PartStart | PartData | PartEnd
_State = Literal["preamble", "delimiter", "headers", "content", "after_content", "done"]


def boundary_from_content_type(content_type: str | None) -> str:
    """The boundary of a download response; any other content type is a ProtocolViolation."""
    if content_type is None or not content_type.startswith(CONTENT_TYPE_PREFIX):
        raise ProtocolViolation(f"Invalid content-type header: {content_type!r}")
    boundary = content_type[len(CONTENT_TYPE_PREFIX) :].strip().strip('"')
    if not boundary:
        raise ProtocolViolation(f"Invalid content-type header: {content_type!r} (empty boundary)")
    return boundary


def find_header_end(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """Where a header block ends: ``(end of headers, start of content)``, or None if not yet.

    Accepts CRLF CRLF and LF LF, whichever comes first. A block that starts with a blank line
    (no headers at all) ends at 0.
    """
    for blank in (b"\r\n", b"\n"):
        if buffer.startswith(blank):
            return 0, len(blank)
    ends = [
        (index, index + len(separator))
        for separator in (b"\r\n\r\n", b"\n\n")
        if (index := buffer.find(separator)) >= 0
    ]
    return min(ends) if ends else None


def parse_part_headers(block: bytes) -> DataMetadata:
    """Metadata of one part from its header block (protocol §2.5).

    Raises:
        ProtocolViolation: no ``Content-Disposition``, or a missing/invalid ``id`` or ``size``.
    """
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise ProtocolViolation("multipart part has no Content-Disposition header")
    params = _disposition_params(disposition)
    return _metadata_from_params(params)


def _disposition_params(disposition: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM.finditer(disposition):
        quoted, bare = match.group(2), match.group(3)
        value = _ESCAPED.sub(r"\1", quoted) if quoted is not None else bare
        params.setdefault(match.group(1).lower(), value)
    return params


def _metadata_from_params(params: dict[str, str]) -> DataMetadata:
    if not params.get("id"):
        raise ProtocolViolation("multipart part has no id in its Content-Disposition")
    size_text = params.get("size", "")
    if not size_text.isdigit():
        raise ProtocolViolation(
            f"multipart part {params['id']!r} has an invalid size {size_text!r}"
        )
    try:
        return DataMetadata(
            id=params["id"],
            domain_id=params.get("domain-id"),
            name=params.get("name"),
            data_type=params.get("data-type"),
            size=int(size_text),
            created_at=_optional_time(params.get("created-at")),
            updated_at=_optional_time(params.get("updated-at")),
        )
    except ValueError as exc:
        raise ProtocolViolation(f"multipart part {params['id']!r}: {exc}") from exc


def _optional_time(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text else None


class MultipartReader:
    """Incremental, size-driven parser of a multipart download body."""

    def __init__(self, boundary: str) -> None:
        self._delimiter = b"--" + boundary.encode("ascii")
        self._buffer = bytearray()
        self._state: _State = "preamble"
        self._remaining = 0
        self._size = 0
        self.parts = 0
        """Number of parts whose headers were read."""

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, chunk: bytes) -> list[PartEvent]:
        """Consume one network chunk; return the events it completes, in order."""
        self._buffer += chunk
        events: list[PartEvent] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> None:
        """The stream ended: raise ProtocolViolation unless the closing delimiter was seen."""
        if self._state == "done":
            return
        raise ProtocolViolation(f"incomplete multipart body: stream ended {self._where()}")

    def _where(self) -> str:
        part = f"part {self.parts}"
        return {
            "preamble": "before the first boundary",
            "delimiter": f"after a boundary (after {part})" if self.parts else "after a boundary",
            "headers": f"inside the headers of part {self.parts + 1}",
            "content": f"inside the content of {part} "
            f"({self._size - self._remaining} of {self._size} bytes)",
            "after_content": f"after {part} without a closing boundary",
            "done": "",
        }[self._state]

    def _step(self, events: list[PartEvent]) -> bool:
        """Advance the state machine once; False when more input is needed."""
        match self._state:
            case "preamble":
                return self._skip_preamble()
            case "delimiter":
                return self._after_delimiter()
            case "headers":
                return self._read_headers(events)
            case "content":
                return self._read_content(events)
            case "after_content":
                return self._expect_delimiter()
            case "done":
                self._buffer.clear()  # the epilogue carries nothing
                return False

    def _skip_preamble(self) -> bool:
        index = self._buffer.find(self._delimiter)
        if index < 0:
            keep = len(self._delimiter) - 1
            del self._buffer[: max(0, len(self._buffer) - keep)]
            return False
        del self._buffer[: index + len(self._delimiter)]
        self._state = "delimiter"
        return True

    def _after_delimiter(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer.startswith(b"--"):
            self._state = "done"
            return True
        line_end = self._line_end_length()
        if line_end is None:
            return False
        if line_end == 0:
            raise ProtocolViolation("malformed multipart body: boundary not followed by a newline")
        del self._buffer[:line_end]
        self._state = "headers"
        return True

    def _line_end_length(self) -> int | None:
        """2 for CRLF, 1 for LF, None if undecidable yet, 0 if neither."""
        if self._buffer.startswith(b"\r\n"):
            return 2
        if self._buffer.startswith(b"\n"):
            return 1
        if self._buffer == b"\r":
            return None
        return 0

    def _read_headers(self, events: list[PartEvent]) -> bool:
        found = find_header_end(self._buffer)
        if found is None:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise ProtocolViolation(
                    f"malformed multipart body: part headers exceed {MAX_HEADER_BYTES} bytes"
                )
            return False
        headers_end, content_start = found
        metadata = parse_part_headers(bytes(self._buffer[:headers_end]))
        del self._buffer[:content_start]
        self.parts += 1
        self._size = self._remaining = metadata.size or 0
        self._state = "content"
        events.append(PartStart(metadata))
        return True

    def _read_content(self, events: list[PartEvent]) -> bool:
        if self._remaining and self._buffer:
            take = min(self._remaining, len(self._buffer))
            events.append(PartData(bytes(self._buffer[:take])))
            del self._buffer[:take]
            self._remaining -= take
        if self._remaining:
            return False
        events.append(PartEnd())
        self._state = "after_content"
        return True

    def _expect_delimiter(self) -> bool:
        line_end = self._line_end_length()
        if line_end is None:
            return False
        candidate = self._buffer[line_end : line_end + len(self._delimiter)]
        if not self._delimiter.startswith(candidate):
            raise ProtocolViolation(
                f"malformed multipart body: part {self.parts} is not followed by the boundary "
                "(its size does not match its content)"
            )
        if len(candidate) < len(self._delimiter):
            return False
        del self._buffer[: line_end + len(self._delimiter)]
        self._state = "delimiter"
        return True


@dataclass(frozen=True)
class UploadPart:
    """One part of a single-request upload: Content-Disposition params and content.

    Create: ``{"name": ..., "data-type": ...}``; update: ``{"id": ...}``.
    """

    params: tuple[tuple[str, str], ...]
    content: bytes

    @classmethod
    def create(cls, name: str, data_type: str, content: bytes) -> UploadPart:
        return cls((("name", name), ("data-type", data_type)), content)

    @classmethod
    def update(cls, data_id: str, content: bytes) -> UploadPart:
        return cls((("id", data_id),), content)


def build_upload_body(parts: Sequence[UploadPart]) -> tuple[str, bytes]:
    """``(Content-Type header, body)`` of a single-request upload (protocol §2.6).

    The boundary ``auki-<uuid4>`` is redrawn until it occurs in no content.
    """
    boundary = _fresh_boundary(parts)
    body = bytearray()
    for part in parts:
        body += _part_header(boundary, part) + part.content + b"\r\n"
    body += f"--{boundary}--\r\n".encode("ascii")
    return f"{CONTENT_TYPE_PREFIX}{boundary}", bytes(body)


def _fresh_boundary(parts: Sequence[UploadPart]) -> str:
    while True:
        boundary = f"auki-{uuid.uuid4()}"
        if not any(boundary.encode("ascii") in part.content for part in parts):
            return boundary


def _part_header(boundary: str, part: UploadPart) -> bytes:
    params = "; ".join(f'{key}="{_quote(value)}"' for key, value in part.params)
    return (
        f"--{boundary}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Disposition: form-data; {params}\r\n\r\n"
    ).encode()


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
