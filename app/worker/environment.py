"""Environments of the child processes the project starts.

- :func:`pipeline_env`: the pipeline child's. It handles untrusted domain data, so it gets the
  allow-list of :mod:`pipeline.environment` (never ``REG_SECRET``, ``SECP256K1_PRIVHEX`` or
  ``SPLATTER_API_TOKEN``), with :data:`app.PROJECT_ROOT` first on ``PYTHONPATH``.
- :func:`child_env`: the whole environment, for the development tools that start a node or an
  emulator (demo, bench, tests): a node needs its secrets.
"""

from __future__ import annotations

import os

from app import PROJECT_ROOT
from pipeline.contract import child_environment

__all__ = ["child_env", "pipeline_env"]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with :data:`app.PROJECT_ROOT` first on ``PYTHONPATH`` (the
    child imports the same code as its parent) and ``extra`` set on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _project_first(env.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def pipeline_env(**extra: str) -> dict[str, str]:
    """The pipeline child's environment: the allow-listed part of this process's, with
    :data:`app.PROJECT_ROOT` first on ``PYTHONPATH`` and ``extra`` on top (secrets refused)."""
    pythonpath = _project_first(os.environ.get("PYTHONPATH", ""))
    return child_environment({"PYTHONPATH": pythonpath, **extra})


def _project_first(pythonpath: str) -> str:
    paths = [str(PROJECT_ROOT), *filter(None, pythonpath.split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(paths))
