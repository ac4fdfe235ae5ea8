"""Every name in the inbox is hostile: symlinks, special files, long or control-character
names, ``..`` tricks. Each is refused into ``error/`` with its reason, nothing is followed, and
nothing outside ``WATCH_DIR`` (and the job store) changes. A node in this process, real HTTP."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app.api.nodes import running_node
from tests.app.factories import make_settings
from tests.app.watch.captures import write_capture
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (links not followed) with its size and mtime."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            info = os.lstat(Path(folder) / name)
            found[str(Path(folder, name).relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda inbox, outside: (inbox / "link").symlink_to(outside),
         "'link' contains a symlink ('link'); symlinks are never followed"),
        (lambda inbox, outside: (
            write_capture(inbox / "cap"), (inbox / "cap" / "s").symlink_to(outside / "secret")),
         "'cap' contains a symlink ('s'); symlinks are never followed"),
        (lambda inbox, outside: os.mkfifo(inbox / "fifo"),
         "'fifo' contains 'fifo', which is not a regular file or folder"),
        (lambda inbox, outside: (inbox / ("n" * 230 + ".mp4")).write_bytes(b"v"),
         "is longer than 200 bytes"),
        (lambda inbox, outside: (inbox / "bell\a.mp4").write_bytes(b"v"),
         "contains control or undecodable characters"),
    ],
)  # fmt: skip
async def test_hostile_inbox_entries_are_refused_and_nothing_outside_changes(
    tmp_path: Path, make: object, reason: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("do not read or move")
    watch = tmp_path / "watch"
    settings = make_settings(
        tmp_path, "write-outputs", watch_dir=watch, watch_stable_secs=0.1, watch_max_attempts=1
    )
    before = tree(outside)
    async with running_node(settings) as node:
        await eventually(lambda: (watch / "inbox").is_dir())
        make(watch / "inbox", outside)  # type: ignore[operator]
        await eventually(lambda: any((watch / "error").iterdir()), within_s=60)
        await eventually(lambda: not any((watch / "inbox").iterdir()), within_s=60)
        jobs = await node.jobs()
    (folder,) = (watch / "error").iterdir()
    report = (folder / "error.txt").read_text()
    assert reason in report, report
    assert folder.name.isascii() and len(folder.name) < 100
    assert tree(outside) == before
    assert list((watch / "outbox").iterdir()) == []
    assert all(j["state"] == "failed" for j in jobs)
