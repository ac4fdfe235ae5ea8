"""End-to-end harness: the node as operators run it (``python -m app``, its own process), the
emulator, a synthetic scene stored as real domain data, and the shapes of protocol §3.7.

Everything talks real HTTP over 127.0.0.1; the pipeline child is ``python -m pipeline run``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app import CAPABILITY, PROJECT_ROOT
from demo import SeededScene, seed_scene
from emulator import EmulatorServer
from tests.app.domains import APP_TOKEN, NODE_KEY, REG_SECRET

#: Training steps of an end-to-end job: a few seconds of training on 2 cores, long enough for
#: the fault tests to act while it trains.
E2E_STEPS = 100
#: Variables a node must not inherit from the test process (PIPELINE_COMMAND included: the
#: child is the real ``python -m pipeline run`` unless a test says otherwise).
_NODE_VARIABLES = (
    "REG_SECRET", "SECP256K1_PRIVHEX", "DMS_BASE_URL", "DDS_BASE_URL", "TASKS_ROOT", "SPLATTER_",
    "PROGRESS_", "POLL_", "CANCEL_", "LOG_", "CLIENT_ID", "NODE_VERSION", "MIN_FREE_DISK_MB",
    "SHUTDOWN_", "DISABLE_TASKS_CLEANUP", "PIPELINE_",
)  # fmt: skip


def node_environment(work: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of one node process: loopback, its own folders, quick polling."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NODE_VARIABLES)}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        SPLATTER_HOST="127.0.0.1",
        SPLATTER_PORT=str(port),
        TASKS_ROOT=str(work / "tasks"),
        SPLATTER_DATA_DIR=str(work / "data"),
        MIN_FREE_DISK_MB="0",
        SPLATTER_ITERATIONS=str(E2E_STEPS),
        SPLATTER_PREVIEW_SIZE="160x120",  # small previews: 30 frames in about a second
        SPLATTER_PREVIEW_FPS="6",
        # Niced, the child gets a tenth of a core against other (nice 0) work on a shared test
        # machine, and a 10 s run takes a minute; the benchmark measures the niced default.
        PIPELINE_NICE="0",
        PROGRESS_MIN_INTERVAL_SECS="0.5",
        POLL_BACKOFF_MS_MIN="50",
        POLL_BACKOFF_MS_MAX="100",
        CANCEL_GRACE_SECS="5",
        LOG_FORMAT="json",
        # the emulator and the progress receivers listen on loopback, which the push door
        # refuses by default (SSRF guard): the operator's allow-list lets them in
        SPLATTER_ALLOWED_DOMAIN_HOSTS="127.0.0.1",
    )
    env.update(extra)
    return env


def lease_environment(emulator: EmulatorServer) -> dict[str, str]:
    """What puts a node in lease mode against the emulator."""
    return {
        "REG_SECRET": REG_SECRET,
        "SECP256K1_PRIVHEX": NODE_KEY,
        "DMS_BASE_URL": emulator.dms_base_url,
        "DDS_BASE_URL": emulator.dds_base_url,
    }


@dataclass
class NodeProcess:
    """One ``python -m app`` process and an HTTP client for it."""

    work: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    starts: int = field(default=0)

    def start(self) -> NodeProcess:
        self.starts += 1
        self.url = f"http://127.0.0.1:{self.env['SPLATTER_PORT']}"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int | None:
        """SIGTERM and wait (the graceful shutdown), SIGKILL after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown at all (a crash, an OOM kill of the service)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def wait_job(self, client: httpx.AsyncClient, job_id: str, within_s: float) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            job = (await client.get(f"/jobs/{job_id}")).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            await asyncio.sleep(0.2)
        raise AssertionError(f"job {job_id} did not end within {within_s} s:\n{self.log_tail()}")


async def seed(emulator: EmulatorServer, summary: Mapping[str, Any]) -> SeededScene:
    """The synthetic scene as domain data in a new domain (what ``make demo`` uploads)."""
    async with httpx.AsyncClient(timeout=60) as http:
        return await seed_scene(http, emulator, dict(summary))


async def create_task(emulator: EmulatorServer, scene: SeededScene) -> str:
    """``POST {DMS}/jobs`` with the app token (§1.12); returns the task id."""
    task = {
        "label": "splat", "stage": "splatter", "capability": CAPABILITY, "priority": 0,
        "inputs_cids": [scene.cid], "mode": "public", "meta": {}, "max_attempts": 3,
    }  # fmt: skip
    body = {
        "label": "e2e", "domain_id": scene.domain_id, "priority": 0, "meta": {},
        "tasks": [task], "edges": [],
    }  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{emulator.dms_base_url}/jobs",
            json=body,
            headers={"Authorization": f"Bearer {APP_TOKEN}"},
        )
    response.raise_for_status()
    task_id: str = response.json()["tasks"][0]["id"]
    return task_id


async def wait_task(
    emulator: EmulatorServer, task_id: str, node: NodeProcess, within_s: float
) -> Any:
    """The emulator's task record once it has ended."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        task = emulator.state.task(task_id)
        if task.status in ("completed", "failed", "cancelled"):
            return task
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} did not end within {within_s} s:\n{node.log_tail()}")
