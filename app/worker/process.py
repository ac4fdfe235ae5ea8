"""One pipeline child process: start it in its own process group, read it, stop it.

The child is the leader of a new session (so of a new process group): cancelling signals the
whole group, SIGTERM first and SIGKILL after a grace period, which also stops grandchildren
(ffmpeg, data loaders). When the leader exits, whatever is left of its group is killed.

On Linux the child also gets SIGKILL when the node process dies (``PR_SET_PDEATHSIG``): a node
killed outright (OOM killer, ``kill -9``) leaves no orphaned training behind to compete with the
restarted node for the GPU.

stdout carries JSON-lines events, parsed with :func:`pipeline.contract.parse_event`; each event
is handed to a callback; a line that is no event is logged (a JSON object that is a malformed
event with a warning naming what is wrong). stderr is logged; a line ``error: <reason>``
there (or an ``error`` event) becomes the failure detail. The last 200 lines of both streams are
kept as a tail, prefixed ``stdout: `` / ``stderr: `` (as the reference runner does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.contract import DoneEvent, ErrorEvent, Event, EventError, parse_event

__all__ = ["TAIL_LINES", "TAIL_LINE_CHARS", "ChildOutcome", "run_child", "terminate_group"]

log = logging.getLogger(__name__)

TAIL_LINES = 200
#: Longest tail entry kept, in characters: the tail travels in a heartbeat event.
TAIL_LINE_CHARS = 2000
_LINE_LIMIT = 1024 * 1024
# After the leader is gone, how long its pipes may stay open (a detached grandchild).
_PIPE_DRAIN_S = 2.0

EventCallback = Callable[[Event], None]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved once here: the forked child must only call it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the node's thread exits."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ChildOutcome:
    """How a pipeline child ended.

    Attributes:
        exit_code: the exit status, or ``None`` when a signal killed it.
        signal_number: the signal that killed it, or ``None``.
        cancelled: the parent stopped it (cancel flag set).
        duration_ms: wall time from start to exit, in milliseconds.
        stdout_lines / stderr_lines: lines read from each stream.
        tail: the last :data:`TAIL_LINES` lines, ``"stdout: ..."`` / ``"stderr: ..."``.
        error_message: the child's own one-line reason (``error`` event or ``error:`` line).
        done: the final ``done`` event, when the child sent one (its ``outputs`` are what the
            node uploads).
    """

    exit_code: int | None
    signal_number: int | None
    cancelled: bool
    duration_ms: int
    stdout_lines: int = 0
    stderr_lines: int = 0
    tail: list[str] = field(default_factory=list)
    error_message: str | None = None
    done: DoneEvent | None = None

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.cancelled

    @property
    def status_text(self) -> str:
        """The exit status as the reference prints Rust's ``Option``: ``Some(1)`` or ``None``."""
        return "None" if self.exit_code is None else f"Some({self.exit_code})"

    @property
    def signal_name(self) -> str | None:
        if self.signal_number is None:
            return None
        try:
            return signal.Signals(self.signal_number).name
        except ValueError:
            return f"signal {self.signal_number}"

    def failure_reason(self) -> str:
        """``python job failed: status=Some(1)[: reason]`` or ``status=None (killed by SIG…)``."""
        reason = f"python job failed: status={self.status_text}"
        if self.signal_number is not None:
            hint = "; the process may have run out of memory" if self._oom_like() else ""
            return f"{reason} (killed by {self.signal_name}{hint})"
        if self.error_message:
            return f"{reason}: {self.error_message}"
        return reason

    def _oom_like(self) -> bool:
        # The kernel's OOM killer sends SIGKILL; when we did not send it, that is the likely cause.
        return self.signal_number == signal.SIGKILL and not self.cancelled


@dataclass
class _Streams:
    on_event: EventCallback
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    stdout_lines: int = 0
    stderr_lines: int = 0
    error_message: str | None = None
    done: DoneEvent | None = None

    def stdout(self, line: str) -> None:
        self.stdout_lines += 1
        self.tail.append(_clip(f"stdout: {line}"))
        event = _parse_event(line)
        if event is None:
            log.info("pipeline stdout: %s", line, extra={"source": "pipeline_stdout"})
            return
        if isinstance(event, ErrorEvent):
            self.error_message = event.message
        if isinstance(event, DoneEvent):
            self.done = event
        try:
            self.on_event(event)
        except Exception:  # a bad consumer must not kill the reader and hang the child
            log.exception("progress callback failed")

    def stderr(self, line: str) -> None:
        self.stderr_lines += 1
        self.tail.append(_clip(f"stderr: {line}"))
        if line.startswith("error: ") and self.error_message is None:
            self.error_message = line.removeprefix("error: ").strip()
        log.info("pipeline: %s", line, extra={"source": "pipeline_stderr"})


async def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    on_event: EventCallback,
    cancel: asyncio.Event,
    grace_s: float,
    nice: int = 0,
) -> ChildOutcome:
    """Runs ``argv`` to completion or until ``cancel`` is set, then stops its process group.

    Args:
        argv: the command, e.g. ``[python, -m, pipeline, run, --job-root, DIR]``.
        env: the child's complete environment.
        cwd: its working directory.
        on_event: called with every JSON event object read from stdout, in order.
        cancel: when set, the group gets SIGTERM, then SIGKILL after ``grace_s`` seconds.
        grace_s: seconds between SIGTERM and SIGKILL.
        nice: niceness added to the child (0–19), so that the service keeps the CPU it needs.

    Raises:
        OSError: the command could not be started (not found, not executable).
    """
    started = time.monotonic()
    streams = _Streams(on_event)
    loop = asyncio.get_running_loop()
    transport, child = await loop.subprocess_exec(
        lambda: _ChildProtocol(streams),
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=str(cwd),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    pid = transport.get_pid()
    if nice > 0:
        # Threads the child starts later inherit this, so training never starves the service.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, nice)
    try:
        cancelled = await _wait_or_cancel(pid, child.exited, cancel, grace_s)
        # The leader is gone; whatever is left of its group (stragglers) goes with it.
        _signal_group(pid, signal.SIGKILL)
        await _drain(child)
    except BaseException:
        # The caller itself was cancelled: do not leave a GPU job running behind us.
        _signal_group(pid, signal.SIGKILL)
        raise
    finally:
        transport.close()
    code = transport.get_returncode()
    assert code is not None  # process_exited has been seen
    return _outcome(code, streams, cancelled, started)


async def terminate_group(pid: int, exited: asyncio.Event, grace_s: float) -> None:
    """SIGTERM to the group led by ``pid``, SIGKILL after ``grace_s``; returns once it exited."""
    _signal_group(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(exited.wait(), timeout=grace_s)
    except TimeoutError:
        log.warning("pipeline ignored SIGTERM for %.1f s; sending SIGKILL", grace_s)
        _signal_group(pid, signal.SIGKILL)
        await exited.wait()


class _ChildProtocol(asyncio.SubprocessProtocol):
    """Splits the child's pipes into lines; signals its exit and the pipes' closing.

    Exit is observed through ``process_exited``, not ``Process.wait()``: on Python 3.11 the
    latter also waits for every holder of the pipes (a stray grandchild) to close them.
    """

    def __init__(self, streams: _Streams) -> None:
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self._lines = {1: _LineSplitter(streams.stdout), 2: _LineSplitter(streams.stderr)}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self._lines[fd].feed(data.encode() if isinstance(data, str) else data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._lines:
            self._lines[fd].flush()

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


class _LineSplitter:
    """Bytes → decoded lines; a line over the limit is replaced by a note, never buffered."""

    def __init__(self, sink: Callable[[str], None], limit: int = _LINE_LIMIT) -> None:
        self._sink = sink
        self._limit = limit
        self._buffer = bytearray()
        self._dropping = False
        self._note = f"<line longer than {limit} bytes dropped>"

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._dropping:  # the rest of an overlong line
                self._dropping = False
            elif len(line) > self._limit:
                self._sink(self._note)
            else:
                self._sink(_decode(line))
        if len(self._buffer) > self._limit:
            self._buffer.clear()
            if not self._dropping:
                self._sink(self._note)
            self._dropping = True

    def flush(self) -> None:
        if self._buffer and not self._dropping:
            self._sink(_decode(bytes(self._buffer)))
        self._buffer.clear()


async def _wait_or_cancel(
    pid: int, exited: asyncio.Event, cancel: asyncio.Event, grace_s: float
) -> bool:
    """Waits for the leader's exit; True when ``cancel`` fired first and the group was stopped."""
    exit_wait = asyncio.ensure_future(exited.wait())
    cancel_wait = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({exit_wait, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exit_wait.cancel()
        cancel_wait.cancel()
    if exited.is_set():
        return False
    await terminate_group(pid, exited, grace_s)
    return True


async def _drain(child: _ChildProtocol) -> None:
    """Waits for the pipes to close; a process outside the group may hold them: stop waiting."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(child.closed.wait(), timeout=_PIPE_DRAIN_S)


def _outcome(code: int, streams: _Streams, cancelled: bool, started: float) -> ChildOutcome:
    return ChildOutcome(
        exit_code=code if code >= 0 else None,
        signal_number=-code if code < 0 else None,
        cancelled=cancelled,
        duration_ms=int((time.monotonic() - started) * 1000),
        stdout_lines=streams.stdout_lines,
        stderr_lines=streams.stderr_lines,
        tail=list(streams.tail),
        error_message=streams.error_message,
        done=streams.done,
    )


def _clip(line: str) -> str:
    if len(line) <= TAIL_LINE_CHARS:
        return line
    return f"{line[:TAIL_LINE_CHARS]}… [{len(line) - TAIL_LINE_CHARS} more characters]"


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _parse_event(line: str) -> Event | None:
    """The event on a stdout line; ``None`` for a line that is not a JSON object (a stray print)
    or is a malformed event (logged with what is wrong: the contract is broken)."""
    if not line.startswith("{"):
        return None
    try:
        return parse_event(line)
    except EventError as exc:
        log.warning("pipeline printed a malformed event: %s", exc)
        return None
