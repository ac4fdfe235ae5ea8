"""Watch task ids: one per input content, and always a name the job-folder guard accepts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from app.runner.workspace import job_layout, prove_job_folder
from app.watch.job import watch_task_id


def test_the_same_content_gets_the_same_task_id_and_other_content_another() -> None:
    digests = [f"sha256:{hashlib.sha256(os.urandom(32)).hexdigest()}" for _ in range(20)]
    first = [watch_task_id(d) for d in digests]
    again = [watch_task_id(d) for d in list(digests)]
    assert first == again
    assert len(set(first)) == len(digests)


def test_a_watch_task_id_names_a_valid_job_folder(tmp_path: Path) -> None:
    task_id = watch_task_id(f"sha256:{hashlib.sha256(b'capture').hexdigest()}")
    layout = job_layout(tmp_path, task_id)
    assert prove_job_folder(tmp_path, layout.root) == tmp_path / task_id
