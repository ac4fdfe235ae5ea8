"""Inbox entries: hostile names, snapshots that never follow links, stability, content hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.watch.entries import (
    StabilityTracker,
    UnsafeEntryError,
    content_hash,
    name_problem,
    safe_label,
    snapshot,
)
from app.watch.folders import WatchFolders


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("room", None),
        ("Küche 2 (final).mp4", None),
        ("..", "is not a plain file or folder name"),
        ("a/b", "is not a plain file or folder name"),
        ("x" * 201, "is longer than 200 bytes"),
        ("é" * 101, "is longer than 200 bytes"),
        ("evil\nname", "contains control or undecodable characters"),
        ("bad\udcffbytes", "contains control or undecodable characters"),
        ("rtl\u202etxt.mp4", "contains control or undecodable characters"),
    ],
)
def test_hostile_names_are_named_and_refused(name: str, problem: str | None) -> None:
    assert name_problem(name) == problem


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("room", "room"),
        ("room.mp4", "room"),
        ("my room.mp4", "my_room-"),
        ("../../etc", "etc-"),
        ("-rf", "rf-"),
        ("...", "capture-"),
        ("x" * 300, "x" * 60 + "-"),
    ],
)
def test_labels_are_safe_folder_names(name: str, label: str) -> None:
    made = safe_label(name)
    assert made.startswith(label)
    assert made == safe_label(name)  # stable
    assert "/" not in made and not made.startswith(".") and len(made) <= 69


def test_a_snapshot_never_follows_a_symlink(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    (drop / "sub" / "a.bin").write_bytes(b"a")
    assert [e[0] for e in snapshot(drop)] == ["", "sub", "sub/a.bin"]
    (drop / "sub" / "etc").symlink_to("/etc")
    with pytest.raises(UnsafeEntryError, match=r"contains a symlink \('sub/etc'\)"):
        snapshot(drop)
    (tmp_path / "link").symlink_to(drop)
    with pytest.raises(UnsafeEntryError, match="contains a symlink"):
        snapshot(tmp_path / "link")


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafeEntryError, match="not a regular file or folder"):
        snapshot(tmp_path / "pipe")


def test_the_content_hash_ignores_names_and_times_but_not_bytes(tmp_path: Path) -> None:
    def make(name: str, content: bytes) -> Path:
        folder = tmp_path / name
        (folder / "d").mkdir(parents=True)
        (folder / "d" / "f").write_bytes(content)
        return folder

    a, b, c = make("a", b"x" * 3_000_000), make("b", b"x" * 3_000_000), make("c", b"y")
    os.utime(b / "d" / "f", (1, 1))
    hashes = [content_hash(p, snapshot(p)) for p in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2] and hashes[0].startswith("sha256:")


def test_an_entry_is_stable_after_the_quiet_period() -> None:
    tracker = StabilityTracker(stable_s=10.0)
    snap_1 = (("", 1, 5, 100),)
    snap_2 = (("", 1, 9, 200),)
    assert tracker.observe("v", snap_1, now=0.0) is None
    assert tracker.observe("v", snap_1, now=9.9) is None
    assert tracker.observe("v", snap_2, now=9.95) is None  # grew: the clock starts again
    assert tracker.observe("v", snap_2, now=19.0) is None
    assert tracker.observe("v", snap_2, now=20.0) == pytest.approx(19.95)


def test_retention_sweeps_by_the_stamp_in_the_name(tmp_path: Path) -> None:
    folders = WatchFolders(tmp_path)
    folders.create()
    old = folders.outbox / "room_20200101T000000Z"
    new = folders.processed / "room_20991231T000000Z.mp4"
    other = folders.error / "by-hand"
    for path in (old, other):
        path.mkdir()
    new.write_bytes(b"")
    os.utime(other, (0, 0))
    deleted = folders.sweep(retention_days=30)
    assert sorted(deleted) == sorted([old, other])
    assert new.exists()
    assert folders.sweep(retention_days=0) == []
