"""The development tools' child environment: the project first on PYTHONPATH, everything else
kept (the nodes they start need their secrets)."""

from __future__ import annotations

import os

import pytest

from app import PROJECT_ROOT
from demo.environment import child_env


def test_the_project_comes_first_and_no_path_is_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    others = ["/opt/a", str(PROJECT_ROOT), "", "/opt/b", "/opt/a"]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(others))
    paths = child_env()["PYTHONPATH"].split(os.pathsep)
    assert paths == [str(PROJECT_ROOT), "/opt/a", "/opt/b"]


def test_without_a_pythonpath_it_is_the_project_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert child_env()["PYTHONPATH"] == str(PROJECT_ROOT)


def test_the_rest_of_the_environment_is_kept_and_extras_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPLATTER_TEST_MARK", "kept")
    monkeypatch.setenv("SPLATTER_TEST_OVERRIDE", "old")
    env = child_env(SPLATTER_TEST_OVERRIDE="new", PYTHONUNBUFFERED="1")
    assert env["SPLATTER_TEST_MARK"] == "kept"
    assert (env["SPLATTER_TEST_OVERRIDE"], env["PYTHONUNBUFFERED"]) == ("new", "1")
    assert os.environ["SPLATTER_TEST_OVERRIDE"] == "old"  # a copy, not this process's
