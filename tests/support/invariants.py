"""Invariants the end-to-end tests check around every node process tree (issue #10).

- No process the node starts (the pipeline child, ffmpeg, ns-train, anything below them)
  carries a node secret in its environment: every descendant's ``/proc/<pid>/environ`` is read
  while the test runs (polled every :data:`POLL_S`, cheap enough not to perturb timing tests).
- Nothing outside ``TASKS_ROOT/<uuid>`` and the job store is created or deleted: the project
  tree (the node's working directory and install), the node's work folder and ``TASKS_ROOT``
  itself are compared before and after.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

__all__ = ["POLL_S", "SECRET_VARIABLES", "FolderGuard", "ProcessTreeWatch", "descendants"]

POLL_S = 0.1
"""Seconds between two looks at the process tree (at least 50 ms: cheap for timing tests)."""

SECRET_VARIABLES = ("REG_SECRET", "SECP256K1_PRIVHEX", "SPLATTER_API_TOKEN")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Written by Python, pytest and the linters, never by the node.
_CACHES = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", "node_modules"}
)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), from ``/proc/<pid>/task/*/children``."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for child in _children(parent):
            found.append(child)
            pending.append(child)
    return found


def _children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


class ProcessTreeWatch:
    """Polls the descendants of the node processes ``roots()`` names; records every descendant
    whose environment holds one of ``secrets`` (values)."""

    def __init__(self, roots: Callable[[], Iterable[int]], secrets: Sequence[str]) -> None:
        self._roots = roots
        self._secrets = [s for s in secrets if s]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="invariants", daemon=True)
        self.violations: list[str] = []
        self.seen: set[int] = set()

    def __enter__(self) -> ProcessTreeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check_once(self) -> None:
        for root in list(self._roots()):
            node = _cmdline(root)
            for pid in descendants(root):
                # Between fork and exec a child still is the node (same command line, the
                # node's environment), and a process being created, exec'd or reaped can show
                # an empty command line: only a process that has exec'd something is judged.
                command = _cmdline(pid)
                if command and command != node:
                    self.seen.add(pid)
                    self._check(pid, command)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(POLL_S)

    def _check(self, pid: int, command: list[str]) -> None:
        env = _environ(pid)
        if _cmdline(pid) != command:  # it exec'd or ended meanwhile: judged at the next look
            return
        leaked = sorted(k for k, v in env.items() if any(s in v for s in self._secrets))
        leaked += sorted(set(SECRET_VARIABLES) & set(env) - set(leaked))
        if leaked:
            shown = " ".join(command)[:300]
            self.violations.append(f"pid {pid} ({shown}) carries a node secret in {leaked}")


class FolderGuard:
    """What exists under some folders, to compare before and after a node ran.

    ``tasks_root`` itself and, under it, ``<uuid>`` job folders (and everything in them) may
    come and go;
    under ``store`` anything may change; elsewhere (``watched`` trees) nothing may be created or
    deleted, except ``allowed`` paths (e.g. the node's log) and interpreter/linter caches.
    """

    def __init__(
        self, watched: Sequence[Path], tasks_root: Path, store: Path, allowed: Sequence[Path]
    ) -> None:
        self._watched = [p.resolve() for p in watched]
        self._tasks_root = tasks_root.resolve()
        self._skip = {store.resolve(), *(p.resolve() for p in allowed)}
        self.before = self.snapshot()

    def snapshot(self) -> set[Path]:
        paths: set[Path] = set()
        for top in self._watched:
            for folder, dirs, files in os.walk(top):
                here = Path(folder)
                dirs[:] = [d for d in dirs if self._descend(here / d)]
                paths.update(here / name for name in [*dirs, *files])
        return {p for p in paths if p not in self._skip and p != self._tasks_root}

    def changes(self) -> list[str]:
        after = self.snapshot()
        created = sorted(str(p) for p in after - self.before)
        deleted = sorted(str(p) for p in self.before - after)
        return [f"created {p}" for p in created] + [f"deleted {p}" for p in deleted]

    def _descend(self, path: Path) -> bool:
        if path.name in _CACHES or path in self._skip:
            return False
        return not (path.parent == self._tasks_root and _UUID.fullmatch(path.name))
