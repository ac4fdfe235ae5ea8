"""``/health`` latency while a job trains: p50 / p99 under 50 concurrent requests.

Everything runs as in production, each in its own process: the emulator of DDS / DMS / the
domain server (``python -m emulator``), the node in lease mode (``python -m app``)
and its pipeline child (``python -m pipeline run``, niced) training a synthetic scene the node
leased and downloaded. This process is only the client: rounds of 50 concurrent ``GET /health``
over loopback (a bare asyncio HTTP/1.1 client on 50 keep-alive connections), first while the
node is idle, then while the child trains. Other work shares these cores, so each figure is the
best of several windows, and the load average is reported with it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app import CAPABILITY, PROJECT_ROOT
from bench.table import BenchRow, BenchTable
from demo import free_port, make_scene, scene_items, stop_process
from demo.environment import child_env

CONCURRENCY = 50
ROUNDS = 40
WINDOWS = 5
TARGET_P99_MS = 50.0
#: The training scene: large enough that a step keeps both cores busy for a while.
SCENE_VIEWS, SCENE_SIZE = 24, "128x96"
APP_TOKEN = "bench-app-token"
REG_SECRET = "bench-reg-secret"


@contextmanager
def _process(argv: list[str], log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=child_env(**env), stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        stop_process(process)


async def _wait_http(url: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {within_s} s")


async def _create_task(emulator: str, summary: dict[str, Any]) -> str:
    """Seeds the scene as domain data (admin API) and creates the job (``POST /v1/jobs``)."""
    domain_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=emulator, timeout=60) as client:
        manifest_id = ""
        for name, data_type, content in scene_items(summary, domain_id, emulator):
            response = await client.post(
                f"/_emulator/domains/{domain_id}/data",
                params={"name": name, "data_type": data_type},
                content=content,
            )
            response.raise_for_status()
            manifest_id = response.json()["id"]  # the manifest comes last
        cid = f"{emulator}/api/v1/domains/{domain_id}/data/{manifest_id}"
        task = {"capability": CAPABILITY, "inputs_cids": [cid], "max_attempts": 1}
        job = {"domain_id": domain_id, "tasks": [task], "edges": []}
        response = await client.post(
            "/v1/jobs", json=job, headers={"Authorization": f"Bearer {APP_TOKEN}"}
        )
        response.raise_for_status()
        task_id: str = response.json()["tasks"][0]["id"]
        return task_id


async def _wait_training(emulator: str, task_id: str, within_s: float = 300.0) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=emulator, timeout=10) as client:
        while time.monotonic() < deadline:
            task = (await client.get(f"/_emulator/tasks/{task_id}")).json()
            if (task["progress"] or {}).get("pipeline_stage") == "train":
                return
            if task["status"] not in ("pending", "leased"):
                raise RuntimeError(f"the task ended before training: {task['fail']}")
            await asyncio.sleep(0.2)
    raise RuntimeError("the task never started training")


async def _still_training(emulator: str, task_id: str) -> bool:
    async with httpx.AsyncClient(base_url=emulator, timeout=10) as client:
        task = (await client.get(f"/_emulator/tasks/{task_id}")).json()
    return bool(task["status"] == "leased" and task["progress"].get("pipeline_stage") == "train")


async def _health_latencies_ms(port: int) -> list[float]:
    """ROUNDS rounds of CONCURRENCY simultaneous requests, one keep-alive connection each.

    A bare HTTP/1.1 client on asyncio streams: httpx would spend more CPU per request than the
    server does, and on 2 shared cores that would measure the client.
    """
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    request = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")  # /health has an empty body
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"unexpected answer: {head[:40]!r}")
        return (time.perf_counter() - start) * 1000

    latencies: list[float] = []
    try:
        for _ in range(ROUNDS):
            latencies += await asyncio.gather(*(one(r, w) for r, w in connections))
    finally:
        for _, writer in connections:
            writer.close()
    return latencies


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (the node's pipeline child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


async def _best_window(port: int, busy_pid: int | None = None) -> tuple[list[float], str]:
    """The window with the lowest p99 of WINDOWS, and the load during the windows: the
    1-minute load average, and the cores ``busy_pid`` used meanwhile."""
    started, cpu_before = time.monotonic(), _cpu_seconds(busy_pid) if busy_pid else 0.0
    windows = [await _health_latencies_ms(port) for _ in range(WINDOWS)]
    load = f"load avg {os.getloadavg()[0]:.1f}"
    if busy_pid:
        cores = (_cpu_seconds(busy_pid) - cpu_before) / (time.monotonic() - started)
        load += f", training child {cores:.2f} cores"
    return min(windows, key=lambda values: _percentile(values, 99)), load


async def _measure(emulator: str, port: int, pid: int, summary: dict[str, Any]) -> dict[str, Any]:
    await _wait_http(f"http://127.0.0.1:{port}/health")
    await _health_latencies_ms(port)  # warm-up
    cpu_before = _cpu_seconds(pid)
    idle, idle_load = await _best_window(port)
    cpu_ms = (_cpu_seconds(pid) - cpu_before) * 1000 / (WINDOWS * ROUNDS * CONCURRENCY)
    task_id = await _create_task(emulator, summary)
    await _wait_training(emulator, task_id)
    (child,) = _children(pid)
    busy, busy_load = await _best_window(port, child)
    if not await _still_training(emulator, task_id):
        raise RuntimeError("training ended before the measurement did")
    return {"idle": idle, "busy": busy, "cpu_ms": cpu_ms, "loads": (idle_load, busy_load)}


def _measure_all(work: Path) -> dict[str, Any]:
    summary = make_scene(work / "scene", SCENE_VIEWS, SCENE_SIZE)
    emulator_port, node_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    emulator_argv = [sys.executable, "-m", "emulator", "--port", str(emulator_port),
                     "--reg-secret", REG_SECRET, "--app-token", APP_TOKEN]  # fmt: skip
    node_env = {
        "REG_SECRET": REG_SECRET,
        "SECP256K1_PRIVHEX": secrets.token_hex(32),
        "DMS_BASE_URL": f"{emulator}/v1",
        "DDS_BASE_URL": emulator,
        "SPLATTER_PORT": str(node_port),
        "TASKS_ROOT": str(work / "tasks"),
        "SPLATTER_DATA_DIR": str(work / "data"),
        "MIN_FREE_DISK_MB": "0",
        "SPLATTER_ITERATIONS": "1000000",  # trains for as long as the measurement lasts
        "POLL_BACKOFF_MS_MIN": "100",
        "POLL_BACKOFF_MS_MAX": "200",
        "LOG_LEVEL": "warning",
    }
    with (
        _process(emulator_argv, work / "emulator.log"),
        _process([sys.executable, "-m", "app"], work / "node.log", **node_env) as node,
    ):
        asyncio.run(_wait_http(f"{emulator}/_emulator/info"))
        return asyncio.run(_measure(emulator, node_port, node.pid, summary))


def run(table: BenchTable) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        result = _measure_all(Path(tmp))
    idle_load, busy_load = result["loads"]
    note = f"{CONCURRENCY} concurrent x {ROUNDS} rounds, best of {WINDOWS}, loopback"
    table.add(BenchRow("/health server CPU per request", result["cpu_ms"], "ms",
                       note="node process user+sys time / requests (idle windows)"))  # fmt: skip
    for label, values, load in (
        ("idle", result["idle"], idle_load),
        ("during training", result["busy"], busy_load),
    ):
        window = f"{note}, {load}"
        table.add(BenchRow(f"/health p50 {label}", _percentile(values, 50), "ms", note=window))
        target = TARGET_P99_MS if label == "during training" else None
        table.add(BenchRow(f"/health p99 {label}", _percentile(values, 99), "ms", target, True,
                           window))  # fmt: skip
