"""Step 5: the node as its own process (``python -m app`` in lease mode against the emulator),
and the process plumbing the demo, the bench and the node tests share."""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from app import PROJECT_ROOT
from demo.config import DemoConfig
from demo.environment import child_env
from emulator import EmulatorServer

__all__ = ["free_port", "running_node", "stop_process"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_node(
    emulator: EmulatorServer, work: Path, log_path: Path, config: DemoConfig, port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m app`` in lease mode against the emulator on 127.0.0.1:``port`` (0: a free
    one), its data under ``work`` and its output in ``log_path``; SIGTERM on the way out."""
    env = child_env(
        REG_SECRET=emulator.state.config.registration_secret,
        SECP256K1_PRIVHEX=secrets.token_hex(32),
        DMS_BASE_URL=emulator.dms_base_url,
        DDS_BASE_URL=emulator.dds_base_url,
        SPLATTER_HOST="127.0.0.1",
        SPLATTER_PORT=str(port or free_port()),
        TASKS_ROOT=str(work / "tasks"),
        SPLATTER_DATA_DIR=str(work / "data"),
        SPLATTER_ITERATIONS=str(config.steps),
        POLL_BACKOFF_MS_MIN="200",
        POLL_BACKOFF_MS_MAX="500",
        MIN_FREE_DISK_MB="256",
        LOG_FORMAT="text",
        NODE_VERSION="0.1.0-demo",
        SPLATTER_PREVIEWS="true" if config.previews else "false",
    )
    if config.threads is not None:
        env["SPLATTER_THREADS"] = str(config.threads)
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
        try:
            yield node
        finally:
            stop_process(node)


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL once ``grace_s`` seconds have passed; waits for the exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
