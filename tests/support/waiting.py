"""Polling for tests that wait on something they cannot await: another process, a file, a
respx route's call count, a thread. One deadline rule for async and sync tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["alive", "eventually", "eventually_sync"]


async def eventually(
    predicate: Callable[[], object], within_s: float = 10.0, step_s: float = 0.02
) -> None:
    """Returns once ``predicate()`` is true, checking every ``step_s`` seconds; fails the test
    (``AssertionError``) when it is still false after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        await asyncio.sleep(step_s)


def eventually_sync(
    predicate: Callable[[], object], within_s: float = 10.0, step_s: float = 0.05
) -> None:
    """:func:`eventually` for synchronous tests: blocks this thread between checks."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        time.sleep(step_s)


def alive(pid: int) -> bool:
    """True while ``pid`` is a running process (not gone, not a zombie); Linux ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
