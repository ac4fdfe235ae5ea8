"""Async client of one domain on a domain server (protocol §2).

Every request reads the current domain token immediately before it is sent (the lease token
rotates every few minutes) and carries ``posemesh-client-id``. Every request, read or write, is
retried under one :class:`~domain_client.retry.RetryPolicy` (backoff with jitter, ``Retry-After``
honoured). Writes that are not idempotent (create, chunked-upload completion) are never re-sent
after an unknown outcome (5xx, timeout or reset after sending) before the item was looked up by
name: if it is already stored, that item is the result, so a retry never creates a duplicate.
Downloads stream to disk and never leave a partial file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx

from domain_client._http import (
    Reply,
    StreamReply,
    open_stream,
    parse_model,
    send,
)
from domain_client.errors import (
    ChunkedUploadUnsupportedError,
    DomainClientError,
    EmptyContentError,
    InvalidInputError,
    NotFoundError,
    ProtocolViolation,
    ResponseError,
    UnauthorizedError,
    with_context,
)
from domain_client.limits import DownloadBounds, bounded, refuse_declared
from domain_client.models import ChunkedUploadStart, DataMetadata, PartEtag, ServerInfo, WireModel
from domain_client.multipart import (
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    UploadPart,
    boundary_from_content_type,
    build_upload_body,
)
from domain_client.naming import check_data_type, check_name, sanitize
from domain_client.retry import Clock, Retrier, RetryPolicy, Sleep
from domain_client.throughput import DownloadRateLimit, metered
from domain_client.tokens import DomainToken

__all__ = ["CLIENT_ID_HEADER", "DomainClient", "DownloadedItem", "Layout"]

DOMAIN_REQUEST_TIMEOUT_S = 300.0
"""Default per-operation read/write timeout of domain-server requests, seconds."""

logger = logging.getLogger(__name__)

CLIENT_ID_HEADER = "posemesh-client-id"
JSON_MAX_BYTES = 16 * 1024 * 1024
MAX_IDS_PER_LIST = 100
INFO_CACHE_S = 60.0
CHUNKED_FALLBACK_STATUSES = frozenset({404, 405, 501})
T = TypeVar("T")


@dataclass(frozen=True)
class DownloadedItem:
    """A downloaded item: where its bytes are on disk, and its metadata."""

    path: Path
    metadata: DataMetadata


Layout = Callable[[DataMetadata], Path]
"""Maps an item's metadata to its file path relative to a download folder."""


@dataclass(frozen=True)
class _Target:
    """What an upload writes: how a stored result is recognised when its answer was lost.

    Attributes:
        size: content length, bytes.
        preexisting: ids of same-named items that existed before the upload (never the result).
        existing_id: the item replaced by id (an update), or None (a create).
    """

    name: str
    data_type: str
    size: int
    preexisting: frozenset[str] = frozenset()
    existing_id: str | None = None


class _DataList(WireModel):
    data: list[DataMetadata] | None = None


class _Etag(WireModel):
    etag: str


class DomainClient:
    """Client of ``{base_url}/api/v1/domains/{domain_id}/...``.

    Args:
        http: the shared client (tests pass one routed through respx).
        base_url: the domain server URL (a path prefix is kept, a trailing ``/`` dropped).
        domain_id: the lease's domain.
        token: the task's rotating bearer, read before each request.
        client_id: sent as ``posemesh-client-id`` on every request.
        request_timeout_s: per-operation read/write timeout, seconds (connect: 5 s).
        retry: backoff policy of every request (reads and every upload step).
        refresh_wait_s: after a 401, how long to wait for the token to rotate (an early
            heartbeat is asked for) before giving up, seconds.
        rng: jitter source of the backoff.
        sleep: waits between attempts (default ``asyncio.sleep``; tests record instead).
        clock: wall-clock seconds since the epoch, to read ``Retry-After`` HTTP-dates.
        download_rate: the floor under every download's speed (``None``: none); a download
            below it fails with ``DownloadTooSlowError``, not retried.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        domain_id: str,
        token: DomainToken,
        client_id: str,
        *,
        request_timeout_s: float = DOMAIN_REQUEST_TIMEOUT_S,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        refresh_wait_s: float = 10.0,
        rng: random.Random | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        download_rate: DownloadRateLimit | None = None,
    ) -> None:
        self._http = http
        self._download_rate = download_rate
        self.base_url = base_url
        self.domain_id = domain_id
        self.token = token
        self.client_id = client_id
        self._timeout = httpx.Timeout(request_timeout_s, connect=connect_timeout_s)
        self._retrier = Retrier(
            retry or RetryPolicy(),
            rng or random.Random(),
            asyncio.sleep if sleep is None else sleep,
            time.time if clock is None else clock,
        )
        self._refresh_wait_s = refresh_wait_s
        self._info_cache: dict[str, tuple[float, ServerInfo | None]] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        """A heartbeat may move the task to another server URL."""
        self._base_url = value.rstrip("/")

    # --- URLs and headers ------------------------------------------------------------------

    def _data_url(self, data_id: str | None = None) -> str:
        url = f"{self._base_url}/api/v1/domains/{quote(self.domain_id, safe='')}/data"
        return f"{url}/{quote(data_id, safe='')}" if data_id is not None else url

    def _headers(
        self, token: str, accept: str | None = None, content_type: str | None = None
    ) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", CLIENT_ID_HEADER: self.client_id}
        if accept is not None:
            headers["Accept"] = accept
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    async def _authorized(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """Run ``attempt(token)`` with the current token; after a 401, replay once if the
        token has rotated meanwhile (or rotates within ``refresh_wait_s``, [SDK] §2.1)."""
        token = self.token.current()
        try:
            return await attempt(token)
        except UnauthorizedError:
            if not await self.token.rotated_since(token, self._refresh_wait_s):
                raise
        logger.info("domain server answered 401; replaying once with the rotated token")
        return await attempt(self.token.current())

    async def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        accept: str | None = "application/json",
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Reply:
        async def attempt(token: str) -> Reply:
            return await send(
                self._http,
                method,
                url,
                what=what,
                timeouts=self._timeout,
                max_bytes=JSON_MAX_BYTES,
                headers=self._headers(token, accept, content_type),
                params=params,
                content=content,
            )

        return await self._authorized(attempt)

    @contextlib.asynccontextmanager
    async def _stream(
        self, url: str, *, what: str, accept: str, params: Mapping[str, str] | None
    ) -> AsyncIterator[StreamReply]:
        async with contextlib.AsyncExitStack() as stack:

            async def attempt(token: str) -> StreamReply:
                return await stack.enter_async_context(
                    open_stream(
                        self._http,
                        "GET",
                        url,
                        what=what,
                        timeouts=self._timeout,
                        headers=self._headers(token, accept),
                        params=params,
                    )
                )

            yield await self._authorized(attempt)

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await self._retrier.run(operation)

    # --- reads -----------------------------------------------------------------------------

    async def info(self) -> ServerInfo | None:
        """``GET /api/v1/info`` (no auth), cached 60 s per base URL.

        Returns None when the server has no info endpoint (404/405/501) or its body does not
        parse; other failures raise.
        """
        cached = self._info_cache.get(self._base_url)
        if cached is not None and time.monotonic() - cached[0] < INFO_CACHE_S:
            return cached[1]
        info = await self._retrying(self._fetch_info)
        self._info_cache[self._base_url] = (time.monotonic(), info)
        return info

    async def _fetch_info(self) -> ServerInfo | None:
        url = f"{self._base_url}/api/v1/info"
        headers = {CLIENT_ID_HEADER: self.client_id, "Accept": "application/json"}
        try:
            reply = await send(
                self._http,
                "GET",
                url,
                what="GET /api/v1/info",
                timeouts=self._timeout,
                max_bytes=JSON_MAX_BYTES,
                headers=headers,
            )
        except ResponseError as exc:
            if exc.status in CHUNKED_FALLBACK_STATUSES:
                return None
            raise
        try:
            return parse_model(ServerInfo, reply.json("info"), "GET /api/v1/info")
        except ProtocolViolation:
            logger.warning("domain server info at %s does not parse; treating as no info", url)
            return None

    async def list_metadata(
        self,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
    ) -> list[DataMetadata]:
        """List items by ids (chunks of 100), or by exact name and/or data type.

        The server's answer is filtered client-side for exact ``name``/``data_type`` matches.

        Raises:
            InvalidInputError: ``ids`` combined with ``name``/``data_type``, or no filter at all.
            ResponseError: a non-2xx status (404 included; lookups decide what it means).
        """
        if ids is not None and (name is not None or data_type is not None):
            raise InvalidInputError("list_metadata: ids cannot be combined with name/data_type")
        if ids is not None:
            items: list[DataMetadata] = []
            for start in range(0, len(ids), MAX_IDS_PER_LIST):
                chunk = ids[start : start + MAX_IDS_PER_LIST]
                items += await self._list({"ids": ",".join(chunk)})
            return items
        if name is None and data_type is None:
            raise InvalidInputError("list_metadata: give ids, name or data_type")
        params = {k: v for k, v in (("name", name), ("data_type", data_type)) if v is not None}
        found = await self._list(params)
        return [
            item
            for item in found
            if (name is None or item.name == name)
            and (data_type is None or item.data_type == data_type)
        ]

    async def _list(self, params: dict[str, str]) -> list[DataMetadata]:
        async def attempt() -> list[DataMetadata]:
            reply = await self._send(
                "GET", self._data_url(), what="list domain data", params=params
            )
            listing = parse_model(_DataList, reply.json("list"), "list domain data")
            return self._own_domain(listing.data or [])

        return await self._retrying(attempt)

    def _own_domain(self, items: list[DataMetadata]) -> list[DataMetadata]:
        for item in items:
            if item.domain_id not in (None, "", self.domain_id):
                raise ProtocolViolation(
                    f"item {item.id} belongs to domain {item.domain_id}, not {self.domain_id}"
                )
        return items

    async def get_metadata(self, data_id: str) -> DataMetadata:
        """``GET …/data/{id}``: one item's metadata."""

        async def attempt() -> DataMetadata:
            reply = await self._send("GET", self._data_url(data_id), what=f"metadata of {data_id}")
            item = parse_model(DataMetadata, reply.json("metadata"), f"metadata of {data_id}")
            if item.id != data_id:
                raise ProtocolViolation(f"asked for item {data_id}, got {item.id}")
            return self._own_domain([item])[0]

        return await self._retrying(attempt)

    async def download_raw(
        self,
        data_id: str,
        dest: Path,
        *,
        expected_size: int | None = None,
        bounds: DownloadBounds | None = None,
    ) -> int:
        """Stream ``GET …/data/{id}?raw=true`` into ``dest``; return the bytes written.

        The bytes land in ``<dest>.part`` and are renamed on success; on any error (including
        cancellation) nothing is left at either path.

        Raises:
            ProtocolViolation: ``expected_size`` given and the body has another length.
            DownloadTooLargeError: ``expected_size`` or the body is over ``bounds.max_bytes``
                (no request is made when ``expected_size`` already is).
        """
        refuse_declared(expected_size, bounds, f"download {data_id}")

        async def attempt() -> int:
            return await self._download_raw_once(data_id, dest, expected_size, bounds)

        return await self._retrying(attempt)

    async def _download_raw_once(
        self, data_id: str, dest: Path, expected: int | None, bounds: DownloadBounds | None
    ) -> int:
        what = f"download {data_id}"
        async with self._stream(
            self._data_url(data_id),
            what=what,
            accept="application/octet-stream",
            params={"raw": "true"},
        ) as reply:
            chunks = metered(reply.chunks(), self._download_rate, what)
            written = await _stream_to_file(bounded(chunks, bounds, what), dest)
        if expected is not None and written != expected:
            await asyncio.to_thread(dest.unlink, missing_ok=True)
            raise ProtocolViolation(f"{what}: got {written} bytes, metadata says {expected}")
        return written

    async def download_multipart(
        self,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
        dest_dir: Path,
        layout: Layout | None = None,
        bounds: DownloadBounds | None = None,
    ) -> list[DownloadedItem]:
        """Download matching items with ``Accept: multipart/form-data`` (protocol §2.5).

        Each part is streamed to ``dest_dir / layout(metadata)`` (default: the sanitised id).
        A body with no items raises NotFoundError; a truncated or malformed body raises
        ProtocolViolation; a body over ``bounds.max_bytes`` raises DownloadTooLargeError; on
        any error the files written by this call are removed.
        """
        if ids is not None and (name is not None or data_type is not None):
            raise InvalidInputError(
                "download_multipart: ids cannot be combined with name/data_type"
            )
        params = {"ids": ",".join(ids)} if ids is not None else {}
        params.update({k: v for k, v in (("name", name), ("data_type", data_type)) if v})
        place = layout or (lambda item: Path(sanitize(item.id, empty="part")))

        async def attempt() -> list[DownloadedItem]:
            return await self._download_multipart_once(params, dest_dir, place, bounds)

        return await self._retrying(attempt)

    async def _download_multipart_once(
        self,
        params: dict[str, str],
        dest_dir: Path,
        place: Layout,
        bounds: DownloadBounds | None,
    ) -> list[DownloadedItem]:
        async with self._stream(
            self._data_url(), what="multipart download", accept="multipart/form-data", params=params
        ) as reply:
            chunks = bounded(
                metered(reply.chunks(), self._download_rate, "multipart download"),
                bounds,
                "multipart download",
            )
            items = await _MultipartSink(dest_dir, place).consume(reply, chunks)
        if not items:
            raise NotFoundError(404)
        return items

    # --- writes ----------------------------------------------------------------------------

    async def create(
        self, name: str, data_type: str, content: bytes, *, preexisting: Collection[str] = ()
    ) -> DataMetadata:
        """``POST …/data`` with one part named ``name`` of type ``data_type``.

        Retried; after an unknown outcome the item is looked up by name and data type before
        the POST is re-sent, and a stored item found there is the result (no duplicate).

        Args:
            preexisting: ids of items of this name and type that existed before this call;
                they are never taken for its result.
        """
        check_name(name)
        check_data_type(data_type)
        _refuse_empty(content, name)
        part = UploadPart.create(name, data_type, content)
        what = f"single-request upload (POST) of {name!r}"
        target = _Target(name, data_type, len(content), frozenset(preexisting))

        async def find() -> DataMetadata | None:
            return await self._find_stored(target, what)

        return await self._retrier.run(
            lambda: self._single_upload("POST", part, what), what=what, find_stored=find
        )

    async def update(self, data_id: str, content: bytes) -> DataMetadata:
        """``PUT …/data`` replacing the content of item ``data_id`` (idempotent: retried)."""
        _refuse_empty(content, data_id)
        part = UploadPart.update(data_id, content)
        what = f"single-request upload (PUT) of item {data_id}"
        return await self._retrier.run(lambda: self._single_upload("PUT", part, what), what=what)

    async def _single_upload(self, method: str, part: UploadPart, what: str) -> DataMetadata:
        content_type, body = build_upload_body([part])
        reply = await self._send(
            method, self._data_url(), what=what, content_type=content_type, content=body
        )
        stored = parse_model(_DataList, reply.json(what), what).data or []
        if len(stored) != 1:
            raise ProtocolViolation(f"{what}: expected one stored item, got {len(stored)}")
        return stored[0]

    async def _find_stored(self, target: _Target, what: str) -> DataMetadata | None:
        """The item an unanswered attempt of ``what`` stored, if the server lists it: exact
        name and data type, ``target.size`` bytes, not one of ``target.preexisting``.

        Raises:
            the lookup's error (with ``what`` named) when the lookup itself fails: then it is
            unknown whether the write took effect, and re-sending could duplicate it.
        """
        try:
            found = await self.list_metadata(name=target.name, data_type=target.data_type)
        except NotFoundError:
            return None  # protocol §2.9: a 404 on a lookup means "none"
        except DomainClientError as exc:
            context = f"looking up {target.name!r} after {what} had an unknown outcome"
            raise _with_context(exc, context) from exc
        fresh = [
            item
            for item in found
            if item.id not in target.preexisting and item.size in (None, target.size)
        ]
        if len(fresh) > 1:
            logger.warning("%s: %d items already carry this name", what, len(fresh))
        if fresh:
            logger.info("%s had stored item %s already; not re-sending", what, fresh[0].id)
            return fresh[0]
        return None

    async def upload_chunked(
        self,
        name: str,
        data_type: str,
        source: Path | bytes,
        existing_id: str | None = None,
        *,
        preexisting: Collection[str] = (),
    ) -> DataMetadata:
        """Upload through the chunked API (protocol §2.7); abort the upload on any failure.

        Every step (initiation, each part, completion) is retried. A completion whose outcome
        is unknown is not re-sent before the item was looked up by name (create) and is found
        missing; for an update (``existing_id``) a re-sent completion that finds the upload
        gone confirms the earlier one by the item's size.

        Args:
            preexisting: ids of items of this name and type that existed before this call
                (never taken for its result; see :meth:`create`).

        Raises:
            ChunkedUploadUnsupportedError: initiation answered 404/405/501 (nothing to abort).
            EmptyContentError: the source is empty (before any request).
        """
        check_name(name)
        check_data_type(data_type)
        size = len(source) if isinstance(source, bytes) else await _file_size(source)
        _refuse_empty(size, name)
        target = _Target(name, data_type, size, frozenset(preexisting), existing_id)
        start = await self._initiate_chunked(target)
        try:
            if start.part_size <= 0:
                raise ProtocolViolation(f"chunked upload: invalid part_size {start.part_size}")
            etags = await self._send_parts(start, source, name)
            return await self._complete_chunked(start.upload_id, etags, target)
        except BaseException:
            await self._abort_chunked(start.upload_id)
            raise

    def _multipart_url(self) -> str:
        return f"{self._data_url()}/multipart"

    async def _initiate_chunked(self, target: _Target) -> ChunkedUploadStart:
        """Start an upload. Re-sent after any retryable failure: an initiation creates no item
        (an unanswered one leaves at most an upload the server expires)."""
        body = {
            "name": target.name,
            "data_type": target.data_type,
            "size": target.size,
            "content_type": "application/octet-stream",
            "existing_id": target.existing_id,
        }
        what = f"chunked upload initiation of {target.name!r}"

        async def attempt() -> ChunkedUploadStart:
            try:
                reply = await self._send_json(
                    "POST", f"{self._multipart_url()}?uploads", body, what
                )
            except ResponseError as exc:
                if exc.status in CHUNKED_FALLBACK_STATUSES:
                    raise ChunkedUploadUnsupportedError(exc.status, exc.body) from exc
                raise
            return parse_model(ChunkedUploadStart, reply.json(what), what)

        return await self._retrier.run(attempt, what=what)

    async def _send_json(
        self,
        method: str,
        url: str,
        body: dict[str, Any],
        what: str,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        return await self._send(
            method,
            url,
            what=what,
            content_type="application/json",
            params=params,
            content=_json_bytes(body),
        )

    async def _send_parts(
        self, start: ChunkedUploadStart, source: Path | bytes, name: str
    ) -> list[PartEtag]:
        """Each part in turn; a failed part is re-sent alone (a part PUT is idempotent)."""
        etags: list[PartEtag] = []
        async for number, chunk in _chunks(source, start.part_size):
            what = f"chunked upload part {number} of {name!r}"
            etag = await self._retrier.run(
                functools.partial(self._put_part, start, number, chunk, what), what=what
            )
            etags.append(PartEtag(part_number=number, etag=etag))
        return etags

    async def _put_part(
        self, start: ChunkedUploadStart, number: int, chunk: bytes, what: str
    ) -> str:
        reply = await self._send(
            "PUT",
            self._multipart_url(),
            what=what,
            content_type="application/octet-stream",
            params={"uploadId": start.upload_id, "partNumber": str(number)},
            content=chunk,
        )
        return parse_model(_Etag, reply.json(what), what).etag

    async def _complete_chunked(
        self, upload_id: str, etags: list[PartEtag], target: _Target
    ) -> DataMetadata:
        what = f"chunked upload completion of {target.name!r}"
        body = {"parts": [etag.wire() for etag in etags]}
        earlier_unknown = False  # an earlier completion may have consumed the upload

        async def find_stored() -> DataMetadata | None:
            nonlocal earlier_unknown
            earlier_unknown = True
            if target.existing_id is not None:
                return None  # an update by id cannot duplicate: re-send
            return await self._find_stored(target, what)

        async def attempt() -> DataMetadata:
            try:
                reply = await self._send_json(
                    "POST", self._multipart_url(), body, what, params={"uploadId": upload_id}
                )
            except NotFoundError as exc:
                if not earlier_unknown:
                    raise
                # the upload is gone: most likely the unanswered completion consumed it
                return await self._confirm_consumed(target, what, exc)
            return parse_model(DataMetadata, reply.json(what), what)

        return await self._retrier.run(attempt, what=what, find_stored=find_stored)

    async def _confirm_consumed(
        self, target: _Target, what: str, exc: NotFoundError
    ) -> DataMetadata:
        """After a re-sent completion found its upload gone: the stored item, proven by a
        lookup (create) or by the updated item's size (update); else ``exc`` with context."""
        if target.existing_id is None:
            found = await self._find_stored(target, what)
        else:
            item = await self.get_metadata(target.existing_id)
            found = item if item.size in (None, target.size) else None
        if found is None:
            context = f"{what}: the upload is gone and no stored item matches"
            raise _with_context(exc, context) from exc
        return found

    async def _abort_chunked(self, upload_id: str) -> None:
        """Best effort: a failed abort is logged, the original error is what the caller sees."""
        try:
            await send(
                self._http,
                "DELETE",
                self._multipart_url(),
                what="chunked upload abort",
                timeouts=self._timeout,
                max_bytes=JSON_MAX_BYTES,
                params={"uploadId": upload_id},
                headers=self._headers(self.token.current()),
            )
        except DomainClientError as exc:
            logger.warning("aborting chunked upload %s failed: %s", upload_id, exc)

    async def delete(self, data_id: str) -> None:
        """``DELETE …/data/{id}`` (idempotent: retried)."""

        async def attempt() -> None:
            await self._send("DELETE", self._data_url(data_id), what=f"delete {data_id}")

        await self._retrying(attempt)


async def _file_size(path: Path) -> int:
    stat = await asyncio.to_thread(path.stat)
    return stat.st_size


def _with_context(exc: DomainClientError, context: str) -> DomainClientError:
    """``exc`` re-made with ``context`` in its message (same class and status)."""
    made = with_context(exc, context)
    return made if made is not exc else ProtocolViolation(f"{exc}; {context}")


def _refuse_empty(content: bytes | int, what: str) -> None:
    size = content if isinstance(content, int) else len(content)
    if size == 0:
        raise EmptyContentError(f"upload of {what!r}")


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _chunks(source: Path | bytes, part_size: int) -> AsyncIterator[tuple[int, bytes]]:
    """``(part number, bytes)`` from 1; a file is read one part at a time off the event loop."""
    if isinstance(source, bytes):
        for number, offset in enumerate(range(0, len(source), part_size), start=1):
            yield number, source[offset : offset + part_size]
        return
    with source.open("rb") as handle:
        number = 1
        while chunk := await asyncio.to_thread(handle.read, part_size):
            yield number, chunk
            number += 1


async def _stream_to_file(chunks: AsyncIterator[bytes], dest: Path) -> int:
    """Write chunks to ``<dest>.part``, then rename; remove the partial file on any error."""
    partial = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with partial.open("wb") as handle:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
                written += len(chunk)
        partial.replace(dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


class _MultipartSink:
    """Writes the parts of a multipart download to files as they stream in."""

    def __init__(self, dest_dir: Path, place: Layout) -> None:
        self._dest_dir = dest_dir
        self._place = place
        self._items: list[DownloadedItem] = []
        self._handle: BinaryIO | None = None

    async def consume(
        self, reply: StreamReply, chunks: AsyncIterator[bytes]
    ) -> list[DownloadedItem]:
        """Writes the parts of ``chunks`` (``reply``'s body, maybe metered) to their files."""
        reader = MultipartReader(boundary_from_content_type(reply.headers.get("content-type")))
        try:
            async for chunk in chunks:
                for event in reader.feed(chunk):
                    self._apply(event)
            reader.finish()
        except BaseException:
            self._discard()
            raise
        return self._items

    def _apply(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            path = self._dest_dir / self._place(event.metadata)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._items.append(DownloadedItem(path, event.metadata))
            self._handle = path.open("wb")
        elif isinstance(event, PartData):
            assert self._handle is not None  # PartData only follows PartStart
            self._handle.write(event.data)
        else:
            self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _discard(self) -> None:
        self._close()
        for item in self._items:
            with contextlib.suppress(OSError):
                item.path.unlink()
        self._items.clear()
