"""Size bounds on downloads: what a domain server sends is streamed, never trusted for its size.

A CID may name a multi-GB item where a small manifest is expected, and a recording may be
larger than the disk. :func:`bounded` wraps a body's chunks: it fails with
:class:`~domain_client.errors.DownloadTooLargeError` as soon as more than ``max_bytes`` arrived
(nothing more is read or allocated), and calls ``on_progress(bytes so far)`` every
``progress_every`` bytes so the caller can re-check free disk while the download runs.
:func:`refuse_declared` fails before any byte is requested when the item's metadata already
says it is too large. Neither is retried: the same item would be as large again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from domain_client.errors import DownloadTooLargeError

__all__ = ["DEFAULT_PROGRESS_EVERY", "DownloadBounds", "bounded", "refuse_declared"]

DEFAULT_PROGRESS_EVERY = 64 * 1024 * 1024
"""Bytes between two ``on_progress`` calls (a free-disk check costs one ``statvfs``)."""

ProgressCheck = Callable[[int], None]


@dataclass(frozen=True)
class DownloadBounds:
    """The bounds of one download.

    Attributes:
        max_bytes: the most bytes accepted (``None``: unbounded); ``limit_name`` names it in the
            error (e.g. the environment variable an operator can raise).
        on_progress: called with the bytes received so far every ``progress_every`` bytes; it
            may raise to stop the download (e.g. the disk is getting full).
    """

    max_bytes: int | None = None
    limit_name: str = "limit"
    on_progress: ProgressCheck | None = None
    progress_every: int = DEFAULT_PROGRESS_EVERY


def refuse_declared(size: int | None, bounds: DownloadBounds | None, what: str) -> None:
    """Raises before downloading when the declared ``size`` (bytes) is over the bound."""
    limit = None if bounds is None else bounds.max_bytes
    if bounds is not None and limit is not None and size is not None and size > limit:
        raise DownloadTooLargeError(_message(what, f"is {size} bytes, more", bounds))


async def bounded(
    chunks: AsyncIterator[bytes], bounds: DownloadBounds | None, what: str
) -> AsyncIterator[bytes]:
    """``chunks`` unchanged, failing once their total passes ``bounds.max_bytes``."""
    if bounds is None:
        async for chunk in chunks:
            yield chunk
        return
    total = 0
    next_check = bounds.progress_every
    async for chunk in chunks:
        total += len(chunk)
        if bounds.max_bytes is not None and total > bounds.max_bytes:
            raise DownloadTooLargeError(_message(what, "sent more", bounds))
        if bounds.on_progress is not None and total >= next_check:
            bounds.on_progress(total)
            next_check = total + bounds.progress_every
        yield chunk


def _message(what: str, found: str, bounds: DownloadBounds) -> str:
    return f"{what} {found} than the {bounds.max_bytes} bytes allowed ({bounds.limit_name})"
