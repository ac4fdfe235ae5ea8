"""Polling helpers for tests that wait on another process (files, pids)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path


async def eventually(
    predicate: Callable[[], bool], within_s: float = 10.0, step_s: float = 0.02
) -> None:
    """Returns once ``predicate()`` holds; fails the test after ``within_s`` seconds."""
    for _ in range(max(1, int(within_s / step_s))):
        if predicate():
            return
        await asyncio.sleep(step_s)
    raise AssertionError(f"condition not met within {within_s} s")


def alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False
