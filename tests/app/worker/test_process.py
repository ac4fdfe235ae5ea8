"""The pipeline child: process group, JSON lines, tail, exit status, cancel, grandchildren."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import PROJECT_ROOT
from app.worker.process import TAIL_LINE_CHARS, TAIL_LINES, ChildOutcome, run_child
from pipeline.contract import Event, event_dict
from tests.app.factories import stub_command
from tests.support.waiting import alive, eventually

pytestmark = pytest.mark.anyio


async def wait_gone(pid: int) -> bool:
    try:
        await eventually(lambda: not alive(pid), within_s=5.0)
    except AssertionError:
        return False
    return True


async def wait_file(path: Path) -> None:
    await eventually(path.exists)


async def run_stub(
    tmp_path: Path,
    *actions: str,
    cancel: asyncio.Event | None = None,
    grace_s: float = 2.0,
    events: list[dict[str, Any]] | None = None,
) -> ChildOutcome:
    argv = [*shlex.split(stub_command(*actions)), "run", "--job-root", str(tmp_path)]
    sink = events if events is not None else []
    return await run_child(
        argv,
        env=dict(os.environ),
        cwd=tmp_path,
        on_event=lambda event: sink.append(event_dict(event)),
        cancel=cancel or asyncio.Event(),
        grace_s=grace_s,
    )


async def test_json_events_reach_the_callback_in_order_and_other_lines_only_the_tail(
    tmp_path: Path,
) -> None:
    events: list[dict[str, Any]] = []
    outcome = await run_stub(
        tmp_path, "stdout:plain text", "progress:3", "stderr:a log line", events=events
    )
    assert outcome.succeeded and outcome.exit_code == 0 and outcome.signal_number is None
    kinds = [(e["event"], e.get("stage"), e.get("status")) for e in events]
    assert kinds[0] == ("stage", "frames", "started")
    assert kinds[-1] == ("done", None, None)
    steps = [e["step"] for e in events if e["event"] == "progress" and e["stage"] == "train"]
    assert steps == [1, 2, 3]
    assert "stdout: plain text" in outcome.tail
    assert outcome.tail[-1] == "stderr: a log line"
    assert outcome.done is not None and outcome.done.event == "done"
    assert outcome.stdout_lines == len(events) + 1 and outcome.stderr_lines == 1


async def test_non_zero_exit_is_reported_as_the_reference_status_string(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "exit:1")
    assert not outcome.succeeded
    assert (outcome.exit_code, outcome.signal_number) == (1, None)
    assert outcome.failure_reason() == "python job failed: status=Some(1)"


async def test_the_pipelines_own_error_line_is_appended_to_the_reason(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "error:images.bin names 3 frames that Frames.mp4 lacks")
    assert outcome.failure_reason() == (
        "python job failed: status=Some(1): images.bin names 3 frames that Frames.mp4 lacks"
    )


async def test_death_by_sigkill_names_the_signal_and_suggests_out_of_memory(
    tmp_path: Path,
) -> None:
    outcome = await run_stub(tmp_path, "kill-self:KILL")
    assert outcome.exit_code is None and outcome.signal_number == signal.SIGKILL
    assert outcome.failure_reason() == (
        "python job failed: status=None (killed by SIGKILL; the process may have run out of memory)"
    )


async def test_death_by_another_signal_names_it_without_the_memory_hint(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "kill-self:SEGV")
    assert outcome.failure_reason() == "python job failed: status=None (killed by SIGSEGV)"


async def test_cancel_sends_sigterm_to_the_group(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    started = tmp_path / "started"
    task = asyncio.create_task(
        run_stub(tmp_path, f"touch:{started}", "sleep:60", cancel=cancel, grace_s=5.0)
    )
    await wait_file(started)
    begin = time.monotonic()
    cancel.set()
    outcome = await task
    assert outcome.cancelled and not outcome.succeeded
    assert outcome.signal_number == signal.SIGTERM
    assert time.monotonic() - begin < 5.0  # it obeyed SIGTERM: no SIGKILL wait


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    ready = tmp_path / "ready"
    task = asyncio.create_task(
        run_stub(
            tmp_path, "ignore-sigterm", f"touch:{ready}", "sleep:60", cancel=cancel, grace_s=0.5
        )
    )
    await wait_file(ready)
    begin = time.monotonic()
    cancel.set()
    outcome = await task
    elapsed = time.monotonic() - begin
    assert outcome.cancelled and outcome.signal_number == signal.SIGKILL
    assert 0.5 <= elapsed < 5.0


async def test_cancelling_also_stops_grandchildren(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    pidfile = tmp_path / "grandchild.pid"
    task = asyncio.create_task(
        run_stub(tmp_path, f"spawn-grandchild:{pidfile}", "sleep:60", cancel=cancel)
    )
    await wait_file(pidfile)
    await asyncio.sleep(0.05)
    grandchild = int(pidfile.read_text())
    assert alive(grandchild)
    cancel.set()
    await task
    assert await wait_gone(grandchild)


async def test_grandchildren_left_behind_by_a_finished_child_are_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    begin = time.monotonic()
    outcome = await run_stub(tmp_path, f"spawn-grandchild:{pidfile}", "exit:0")
    assert outcome.succeeded
    assert await wait_gone(int(pidfile.read_text()))
    # The leftover held stdout open; the reader must not wait for it.
    assert time.monotonic() - begin < 10.0


async def test_cancelling_the_awaiting_task_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    task = asyncio.create_task(run_stub(tmp_path, f"pid:{pidfile}", "sleep:60"))
    await wait_file(pidfile)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(int(pidfile.read_text()))


async def test_the_tail_keeps_the_last_200_lines_of_both_streams(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "lines:150")
    assert len(outcome.tail) == TAIL_LINES
    assert (outcome.stdout_lines, outcome.stderr_lines) == (150, 150)
    assert "stdout: out 149" in outcome.tail and "stderr: err 149" in outcome.tail
    assert "stdout: out 0" not in outcome.tail
    assert all(line.startswith(("stdout: ", "stderr: ")) for line in outcome.tail)


async def test_long_lines_are_clipped_in_the_tail(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "long-line:5000")
    assert outcome.tail[0] == "stdout: " + "x" * (TAIL_LINE_CHARS - 8) + (
        f"… [{5000 + 8 - TAIL_LINE_CHARS} more characters]"
    )


async def test_an_overlong_line_is_dropped_and_reading_goes_on(tmp_path: Path) -> None:
    outcome = await run_stub(tmp_path, "long-line:1100000", "stdout:after")
    assert outcome.succeeded
    assert outcome.tail[-1] == "stdout: after"
    assert any("dropped" in line for line in outcome.tail)


async def test_a_command_that_does_not_exist_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        await run_child(
            [str(tmp_path / "no-such-program")],
            env=dict(os.environ),
            cwd=tmp_path,
            on_event=lambda e: None,
            cancel=asyncio.Event(),
            grace_s=1.0,
        )


async def test_a_failing_callback_does_not_stop_the_reader(tmp_path: Path) -> None:
    def explode(event: Event) -> None:
        raise RuntimeError("consumer bug")

    argv = [*shlex.split(stub_command("progress:2")), "run", "--job-root", str(tmp_path)]
    outcome = await run_child(
        argv,
        env=dict(os.environ),
        cwd=tmp_path,
        on_event=explode,
        cancel=asyncio.Event(),
        grace_s=1.0,
    )
    assert outcome.succeeded and outcome.done is not None


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_line_splitting_is_independent_of_chunk_boundaries(chunk: int) -> None:
    from app.worker.process import _LineSplitter

    lines: list[str] = []
    splitter = _LineSplitter(lines.append, limit=20)
    data = b"short\r\n" + b"y" * 50 + b"\nafter\n" + "caf\u00e9".encode() + b"\nno-newline"
    for start in range(0, len(data), chunk):
        splitter.feed(data[start : start + chunk])
    splitter.flush()
    assert lines == ["short", "<line longer than 20 bytes dropped>", "after", "caf\u00e9",
                     "no-newline"]  # fmt: skip


def _poll(condition: Callable[[], bool], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_with_a_node_killed_outright(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    argv = [*shlex.split(stub_command(f"pid:{pidfile}", "sleep:60")), "run", "--job-root", "."]
    node = f"""
import asyncio, os
from app.worker.process import run_child
asyncio.run(run_child({argv!r}, env=dict(os.environ), cwd={str(tmp_path)!r},
                      on_event=print, cancel=asyncio.Event(), grace_s=1.0))
"""
    parent = subprocess.Popen([sys.executable, "-c", node], cwd=PROJECT_ROOT)
    try:
        assert _poll(pidfile.exists)
        child = int(pidfile.read_text())
        parent.kill()  # no shutdown, no cancel: the process is simply gone
        parent.wait()
        assert _poll(lambda: not alive(child))
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
