"""The pipeline child's environment: the project first on PYTHONPATH, the allow-list only."""

from __future__ import annotations

import os

import pytest

from app import PROJECT_ROOT
from app.worker.environment import pipeline_env


def test_the_pipeline_child_gets_the_project_first_and_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/opt/a")
    monkeypatch.setenv("REG_SECRET", "s3cret")
    env = pipeline_env(PYTHONUNBUFFERED="1")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(PROJECT_ROOT), "/opt/a"]
    assert "REG_SECRET" not in env and env["PYTHONUNBUFFERED"] == "1"
