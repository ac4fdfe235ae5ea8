"""Job folder layout, the job-folder guard, start-up cleanup and the free-disk check."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runner import SplatterJobError
from app.runner.workspace import (
    UnsafeJobFolderError,
    check_free_disk,
    cleanup_tasks_root,
    create_job_folder,
    job_layout,
    prove_job_folder,
    remove_job_root,
)

TASK = "0b6a7d1e-5f65-4b83-a9f1-3f0c7e6a2d11"
OTHER = "9f3c2b1a-0d4e-4f5a-8b6c-7d8e9f0a1b2c"


def test_the_layout_follows_the_reference(tmp_path: Path) -> None:
    layout = job_layout(tmp_path, TASK)
    assert layout.recording("scan") == tmp_path / TASK / "datasets/scan/Frames.mp4"
    assert layout.model_dir == tmp_path / TASK / "refined/global/refined_sfm_combined"
    assert layout.splat_file == tmp_path / TASK / "refined/splatter/splat_rot.splat"


def test_an_upper_case_uuid_names_its_lower_case_folder(tmp_path: Path) -> None:
    assert job_layout(tmp_path, TASK.upper()).root == tmp_path / TASK


@pytest.mark.parametrize(
    "task_id", ["/", "../x", "a/b", "..", "", "t-1", f"{TASK}/..", f"../{TASK}", f" {TASK}",
                f"{{{TASK}}}", f"urn:uuid:{TASK}", TASK.replace("-", "")],
)  # fmt: skip
def test_a_task_id_that_is_no_uuid_builds_no_path(tmp_path: Path, task_id: str) -> None:
    with pytest.raises(
        UnsafeJobFolderError, match=r"^invalid task id .*: a task id must be a UUID"
    ):
        job_layout(tmp_path / "tasks", task_id)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("relative", ["x", f"a/{TASK}", f"../{TASK}", ".", TASK + "/d"])
def test_the_guard_refuses_anything_but_tasks_root_slash_uuid(
    tmp_path: Path, relative: str
) -> None:
    with pytest.raises(UnsafeJobFolderError, match="not a job folder <TASKS_ROOT>/<uuid>"):
        prove_job_folder(tmp_path, tmp_path / relative)
    assert prove_job_folder(tmp_path, tmp_path / "." / TASK) == tmp_path / "." / TASK


def test_a_symlink_named_like_a_task_is_neither_followed_nor_deleted(tmp_path: Path) -> None:
    tasks, precious = tmp_path / "tasks", tmp_path / "precious"
    tasks.mkdir()
    precious.mkdir()
    (precious / "wallet").write_text("keep")
    (tasks / TASK).symlink_to(precious)
    with pytest.raises(UnsafeJobFolderError):
        create_job_folder(job_layout(tasks, TASK))
    remove_job_root(tasks / TASK, cleanup_disabled=False, tasks_root=tasks)
    assert cleanup_tasks_root(tasks, cleanup_disabled=False) == []
    assert (precious / "wallet").read_text() == "keep"


def test_removal_refuses_a_folder_outside_tasks_root(tmp_path: Path) -> None:
    store = tmp_path / "data"
    store.mkdir()
    remove_job_root(store, cleanup_disabled=False, tasks_root=tmp_path / "tasks")
    remove_job_root(Path("/"), cleanup_disabled=False)
    assert store.is_dir()


def test_create_makes_tasks_root_and_the_job_folder(tmp_path: Path) -> None:
    layout = job_layout(tmp_path / "tasks", TASK)
    create_job_folder(layout)
    assert layout.root.is_dir()
    remove_job_root(layout.root, cleanup_disabled=False, tasks_root=tmp_path / "tasks")
    assert list((tmp_path / "tasks").iterdir()) == []


def test_start_up_cleanup_removes_only_uuid_job_folders(tmp_path: Path) -> None:
    for name in (TASK, OTHER, "venv", "data", "old-task"):
        (tmp_path / name / "inside").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("keep")
    assert cleanup_tasks_root(tmp_path, cleanup_disabled=False) == [
        tmp_path / TASK, tmp_path / OTHER
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes.txt", "old-task", "venv"]


def test_start_up_cleanup_keeps_everything_when_disabled(tmp_path: Path) -> None:
    (tmp_path / TASK).mkdir()
    assert cleanup_tasks_root(tmp_path, cleanup_disabled=True) == []
    assert (tmp_path / TASK).is_dir()
    assert cleanup_tasks_root(tmp_path / "absent", cleanup_disabled=False) == []


def test_the_disk_check_measures_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert check_free_disk(tmp_path / "not" / "yet", min_free_mb=1) > 1024 * 1024
    with pytest.raises(SplatterJobError, match=r"^insufficient disk space: \d+ MiB free under"):
        check_free_disk(tmp_path, min_free_mb=1 << 40)


def test_the_guard_compares_resolved_parents(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert (
        prove_job_folder(tmp_path / "alias", tmp_path / "real" / TASK) == tmp_path / "real" / TASK
    )
