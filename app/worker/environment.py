"""Environments of the child processes the project starts.

- :func:`pipeline_env`: the pipeline child's. It handles untrusted domain data, so it gets the
  allow-list of :mod:`pipeline.environment` (never ``REG_SECRET``, ``SECP256K1_PRIVHEX`` or
  ``SPLATTER_API_TOKEN``), with :data:`app.PROJECT_ROOT` first on ``PYTHONPATH``.
- :func:`project_pythonpath`: ``PYTHONPATH`` with :data:`app.PROJECT_ROOT` first, shared with the
  development tools' whole-environment copy (:func:`demo.environment.child_env`), which is not
  part of the node.
"""

from __future__ import annotations

import os

from app import PROJECT_ROOT
from pipeline.contract import child_environment

__all__ = ["pipeline_env", "project_pythonpath"]


def pipeline_env(**extra: str) -> dict[str, str]:
    """The pipeline child's environment: the allow-listed part of this process's, with
    :data:`app.PROJECT_ROOT` first on ``PYTHONPATH`` and ``extra`` on top (secrets refused)."""
    pythonpath = project_pythonpath(os.environ.get("PYTHONPATH", ""))
    return child_environment({"PYTHONPATH": pythonpath, **extra})


def project_pythonpath(pythonpath: str) -> str:
    """``pythonpath`` (``os.pathsep``-separated) with :data:`app.PROJECT_ROOT` first, so a child
    imports the same code as its parent; empty and repeated entries dropped."""
    paths = [str(PROJECT_ROOT), *filter(None, pythonpath.split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(paths))
