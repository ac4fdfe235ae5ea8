"""The cancel flag, checked by every step of the splatter runner.

A set flag becomes :class:`JobCancelledError` (``task cancelled: <stage>``) before a step starts
(:func:`check_cancelled`) or while one is awaited (:func:`until_cancelled`, which abandons the
work in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from app.ports import JobContextView
from app.runner.errors import JobCancelledError

__all__ = ["check_cancelled", "until_cancelled"]

T = TypeVar("T")


def check_cancelled(ctx: JobContextView, stage: str) -> None:
    """Raises :class:`JobCancelledError` (``task cancelled: <stage>``) once the flag is set."""
    if ctx.cancelled.is_set():
        raise JobCancelledError(stage)


async def until_cancelled(ctx: JobContextView, work: Awaitable[T], stage: str) -> T:
    """Awaits ``work``, abandoning it with :class:`JobCancelledError` if the cancel flag is set."""
    check_cancelled(ctx, stage)
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(ctx.cancelled.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        raise JobCancelledError(stage)
    return task.result()
