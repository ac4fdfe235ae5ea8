"""Builders for node tests: settings on a temporary folder, stub pipeline commands."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings

STUB_PIPELINE = Path(__file__).with_name("stub_pipeline.py")


def stub_command(*actions: str) -> str:
    """A ``PIPELINE_COMMAND`` that runs the stub pipeline with these actions in order."""
    words = [sys.executable, str(STUB_PIPELINE)]
    for action in actions:
        words += ["--do", action]
    return shlex.join(words)


def make_settings(tmp_path: Path, *actions: str, **overrides: Any) -> Settings:
    """Settings rooted in ``tmp_path`` with the stub pipeline, no disk floor, no throttling;
    pushed URLs may name 127.0.0.1 (the emulator and progress receivers of the tests)."""
    values: dict[str, Any] = {
        "tasks_root": tmp_path / "tasks",
        "splatter_data_dir": tmp_path / "data",
        "pipeline_command": stub_command(*actions),
        "min_free_disk_mb": 0,
        "progress_min_interval_secs": 0.0,
        "cancel_grace_secs": 2.0,
        "splatter_allowed_domain_hosts": "127.0.0.1",
    }
    values.update(overrides)
    return Settings(**values)
