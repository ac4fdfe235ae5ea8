"""Serving output files: HTTP Range (video seeking), ETag revalidation, the right content type.

Starlette's ``FileResponse`` answers ``Range`` with ``206`` and sets ``ETag`` / ``Last-Modified``
(from the file's mtime and size); this adds ``304 Not Modified`` for a matching
``If-None-Match`` and ``Cache-Control: no-cache``, so a browser revalidates a snapshot that is
replaced in place (``live.splat``) instead of showing a stale copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

__all__ = ["CONTENT_TYPES", "content_type", "file_etag", "file_response"]

CONTENT_TYPES = {
    ".splat": "application/octet-stream",
    ".ply": "application/octet-stream",
    ".sog": "application/zip",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def file_etag(stat: os.stat_result) -> str:
    """The ETag Starlette's ``FileResponse`` sends for a file with this ``stat``."""
    base = f"{stat.st_mtime}-{stat.st_size}"
    return f'"{hashlib.md5(base.encode(), usedforsecurity=False).hexdigest()}"'


def file_response(path: Path, request: Request, download_name: str | None = None) -> Response:
    """``path`` as a response to ``request``: 304, 206 (Range) or 200.

    Args:
        path: an existing file (the caller has checked it belongs where it is served from).
        request: for ``If-None-Match`` and ``Range``.
        download_name: when set, ``Content-Disposition: attachment`` with that name.
    """
    stat = path.stat()
    etag = file_etag(stat)
    headers = {"cache-control": "no-cache"}
    if _etag_matches(etag, request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers={**headers, "etag": etag})
    disposition = "attachment" if download_name else "inline"
    return FileResponse(
        path,
        media_type=content_type(path),
        headers=headers,
        stat_result=stat,
        filename=download_name,
        content_disposition_type=disposition,
    )


def _etag_matches(etag: str, if_none_match: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",") if t.strip()}
    return "*" in tags or etag in tags
