"""The e2e invariant checks can fail: a secret in a grandchild's environment and a stray file
are caught; job folders, the store and allowed files are not reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.invariants import FolderGuard, ProcessTreeWatch, descendants

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")


def test_a_secret_in_a_grandchilds_environment_is_caught() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "LEAK": "value-with-s3cret-inside"}
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '30'])"], env=env
    )
    try:
        deadline = time.monotonic() + 20
        while not descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        watch = ProcessTreeWatch(lambda: [os.getpid()], ["s3cret"])
        watch.check_once()
        clean = ProcessTreeWatch(lambda: [os.getpid()], ["not-there"])
        clean.check_once()
    finally:
        parent.kill()
        parent.wait()
    assert len(watch.violations) >= 2  # the python child and its sleep grandchild
    assert all(v.endswith("carries a node secret in ['LEAK']") for v in watch.violations)
    assert clean.violations == []


def test_only_job_folders_the_store_and_allowed_files_may_come_and_go(tmp_path: Path) -> None:
    tasks, store = tmp_path / "tasks", tmp_path / "data"
    tasks.mkdir()
    guard = FolderGuard([tmp_path], tasks, store, [tmp_path / "node.log"])
    (tasks / "0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11" / "datasets").mkdir(parents=True)
    store.mkdir()
    (store / "jobs.sqlite3").write_bytes(b"")
    (tmp_path / "node.log").write_text("log")
    (tmp_path / "__pycache__").mkdir()
    assert guard.changes() == []
    (tasks / "not-a-job").mkdir()
    (tmp_path / "stray.txt").write_text("x")
    tasks.joinpath("0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11").rename(tmp_path / "moved")
    assert guard.changes() == [
        f"created {tmp_path / 'moved'}",
        f"created {tmp_path / 'moved' / 'datasets'}",
        f"created {tmp_path / 'stray.txt'}",
        f"created {tasks / 'not-a-job'}",
    ]
