"""Run an external program (nerfstudio's ``ns-train`` / ``ns-export``) as a supervised child.

The child leads its own session (so its own process group): stopping it signals the whole group,
which also reaches the data-loader workers it forks. Whatever interrupts the caller while the
child runs (SIGTERM turned into an exception by ``python -m pipeline run``, Ctrl-C, a bug) stops
the group first — SIGTERM, then SIGKILL after a grace period — and only then propagates. On Linux
the child also gets SIGKILL if the thread that started it dies (``PR_SET_PDEATHSIG``), so a
pipeline killed outright leaves no training behind on the GPU. Once the leader exits, stragglers
left in its group are killed.

The child's stdout lines go to a callback (progress parsing) and, like its stderr, to the log
(stderr of the pipeline: its stdout carries only JSON events). The last stderr lines are kept
for the error message.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.environment import child_environment
from pipeline.errors import ExternalToolError, ToolUnavailableError

__all__ = ["ToolResult", "failure_message", "require_tool", "run_tool"]

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 50
MESSAGE_TAIL_LINES = 5
# ANSI colour / cursor sequences (rich may emit some even into a pipe).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PR_SET_PDEATHSIG = 1


@dataclass
class ToolResult:
    """A finished child.

    Attributes:
        returncode: exit status; negative when a signal killed it (``-signal``).
        stderr_tail: its last stderr lines (ANSI sequences removed), oldest first.
    """

    returncode: int
    stderr_tail: list[str]


def require_tool(name: str, unavailable: str) -> str:
    """The full path of program ``name`` on ``PATH``.

    Raises:
        ToolUnavailableError: not found; ``unavailable`` is its message.
    """
    path = shutil.which(name)
    if path is None:
        raise ToolUnavailableError(unavailable, tool=name)
    return path


def run_tool(
    argv: Sequence[str],
    on_stdout_line: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
    grace_s: float = 5.0,
) -> ToolResult:
    """Run ``argv`` to completion, streaming its output.

    Args:
        argv: program and arguments (the program should be a full path, see
            :func:`require_tool`).
        on_stdout_line: called with every stdout line (without ANSI sequences or newline).
        env: extra environment variables on top of the allow-listed part of this process's
            (:func:`pipeline.environment.child_environment`: never a node secret);
            ``PYTHONUNBUFFERED=1`` is always set so that a Python child's lines arrive as it
            prints them.
        grace_s: seconds between SIGTERM and SIGKILL when the child must be stopped.

    Raises:
        ExternalToolError: the program could not be started (``OSError``).
    """
    name = Path(argv[0]).name
    child_env = child_environment({**(env or {}), "PYTHONUNBUFFERED": "1"})
    try:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        raise ExternalToolError(f"cannot start {name}: {exc}", tool=name) from exc
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    reader = threading.Thread(
        target=_read_stderr, args=(child.stderr, name, tail), name=f"{name}-stderr", daemon=True
    )
    reader.start()
    try:
        _read_stdout(child.stdout, name, on_stdout_line)
        returncode = child.wait()
    except BaseException:
        _stop_group(child, grace_s)
        raise
    finally:
        _signal_group(child.pid, signal.SIGKILL)  # stragglers of a finished or stopped child
        reader.join(timeout=5.0)
    return ToolResult(returncode, list(tail))


def failure_message(action: str, name: str, result: ToolResult) -> str:
    """``<action>: <name> exited with status N (stderr: last | lines)``, on one line."""
    if result.returncode < 0:
        status = f"was killed by {_signal_name(-result.returncode)}"
    else:
        status = f"exited with status {result.returncode}"
    lines = [line.strip() for line in result.stderr_tail if line.strip()]
    detail = " | ".join(lines[-MESSAGE_TAIL_LINES:]) or "no stderr output"
    return f"{action}: {name} {status} (stderr: {detail})"


def _read_stdout(
    stream: IO[bytes] | None, name: str, on_line: Callable[[str], None] | None
) -> None:
    assert stream is not None
    for raw in stream:
        line = _clean(raw)
        log.info("%s: %s", name, line)
        if on_line is not None:
            on_line(line)


def _read_stderr(stream: IO[bytes] | None, name: str, tail: deque[str]) -> None:
    assert stream is not None
    with contextlib.suppress(ValueError, OSError):  # pipe closed under us at shutdown
        for raw in stream:
            line = _clean(raw)
            tail.append(line)
            log.info("%s [stderr]: %s", name, line)


def _clean(raw: bytes) -> str:
    return _ANSI.sub("", raw.decode("utf-8", errors="replace")).rstrip("\r\n")


def _stop_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the child's group, SIGKILL if it is still there after ``grace_s``."""
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("%s ignored SIGTERM for %.1f s; sending SIGKILL", child.args, grace_s)
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved here: between fork and exec the child must only call it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when its parent thread ends."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
