"""The environment every child process the project starts gets (pipeline children, the demo's
and the bench's node and emulator processes)."""

from __future__ import annotations

import os

from app import PROJECT_ROOT

__all__ = ["child_env"]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with :data:`app.PROJECT_ROOT` first on ``PYTHONPATH`` (the
    child imports the same code as its parent) and ``extra`` set on top."""
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env
