"""Start-up cleanup and the free-disk check (the layout: tests/pipeline/test_contract.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runner import SplatterJobError
from app.runner.workspace import check_free_disk, cleanup_tasks_root


def test_start_up_cleanup_removes_job_folders_but_not_files(tmp_path: Path) -> None:
    (tmp_path / "old-task" / "datasets").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("keep")
    assert cleanup_tasks_root(tmp_path, cleanup_disabled=False) == [tmp_path / "old-task"]
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_start_up_cleanup_keeps_everything_when_disabled(tmp_path: Path) -> None:
    (tmp_path / "old-task").mkdir()
    assert cleanup_tasks_root(tmp_path, cleanup_disabled=True) == []
    assert (tmp_path / "old-task").is_dir()
    assert cleanup_tasks_root(tmp_path / "absent", cleanup_disabled=False) == []


def test_the_disk_check_measures_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert check_free_disk(tmp_path / "not" / "yet", min_free_mb=1) > 1024 * 1024
    with pytest.raises(SplatterJobError, match=r"^insufficient disk space: \d+ MiB free under"):
        check_free_disk(tmp_path, min_free_mb=1 << 40)
