"""Fixtures of the end-to-end tests: one tiny synthetic scene per session, node processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import PROJECT_ROOT
from demo import free_port
from tests.app.e2e.harness import NodeProcess, node_environment
from tests.support.invariants import SECRET_VARIABLES, FolderGuard, ProcessTreeWatch

StartNode = Callable[..., NodeProcess]


@pytest.fixture(scope="session")
def synthetic_scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``python -m pipeline synthetic`` at a tiny size: 12 views of 64×48, 600 Gaussians."""
    root = tmp_path_factory.mktemp("synthetic-scene")
    command = [
        sys.executable, "-m", "pipeline", "synthetic", "--job-root", str(root),
        "--views", "12", "--size", "64x48", "--gaussians", "600", "--points", "400",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[StartNode]:
    """Starts ``python -m app`` processes (``start_node(**env)``); all are stopped afterwards.

    Around them it checks issue #10's invariants: no descendant of a node carries a node secret
    in its environment, and nothing outside ``TASKS_ROOT/<uuid>`` and the store was created or
    deleted in the node's folder or the project tree (see :mod:`tests.support.invariants`).
    """
    nodes: list[NodeProcess] = []
    guards = [FolderGuard([PROJECT_ROOT], PROJECT_ROOT / "tasks", PROJECT_ROOT / "data", [])]
    secrets: list[str] = []

    def start(work: Path | None = None, **env: str) -> NodeProcess:
        folder = work or tmp_path / f"node-{len(nodes)}"
        folder.mkdir(parents=True, exist_ok=True)
        environment = node_environment(folder, free_port(), **env)
        secrets.extend(environment.get(name, "") for name in SECRET_VARIABLES)
        guards.append(
            FolderGuard([folder], folder / "tasks", folder / "data", [folder / "node.log"])
        )
        node = NodeProcess(folder, environment, folder / "node.log").start()
        nodes.append(node)
        return node

    def node_pids() -> list[int]:
        return [n.pid for n in nodes if n.process is not None and n.process.poll() is None]

    with ProcessTreeWatch(node_pids, secrets) as watch:
        yield start
        for node in nodes:
            node.stop()
    # Issue #10's invariants, over every node this test started (and all they started).
    assert watch.violations == []
    assert [change for guard in guards for change in guard.changes()] == []
