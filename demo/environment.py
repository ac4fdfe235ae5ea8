"""The environment of the processes the development tools start (demo, bench, tests).

They start whole nodes and emulators, and a node needs its secrets, so this is a copy of the
whole environment. The node itself never uses it: its pipeline child gets the allow-list of
:func:`app.worker.environment.pipeline_env`.
"""

from __future__ import annotations

import os

from app.worker.environment import project_pythonpath

__all__ = ["child_env"]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with :data:`app.PROJECT_ROOT` first on ``PYTHONPATH`` (the
    child imports the same code as its parent) and ``extra`` set on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = project_pythonpath(env.get("PYTHONPATH", ""))
    env.update(extra)
    return env
