"""The whole demo, steps 1 to 6: emulator, scene, job, node, progress, artifacts and receipt."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from demo.config import DemoConfig
from demo.display import describe, describe_metrics, print_artifacts, say
from demo.processes import free_port, running_node
from demo.scene import SeededScene, create_job, make_scene, seed_scene
from emulator import EmulatorConfig, EmulatorServer

__all__ = ["fetch_artifacts", "follow", "run_demo"]

#: File extension of each artifact data type, for the downloaded copies.
EXTENSIONS = {
    "splat_data": ".splat",
    "splat_preview_top": ".jpg",
    "splat_preview_angle": ".jpg",
    "splat_preview_video": ".mp4",
    "splat_data_sog": ".sog",
    "splat_report_json": ".json",
}
FINAL_STATUSES = ("completed", "failed", "cancelled")
#: ``--serve``: seconds between looks at whether the node still runs.
SERVE_POLL_S = 0.5


async def run_demo(config: DemoConfig) -> int:
    """Runs the demo; returns the process exit status (0 when the task completed)."""
    output = config.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="splatter-demo-"))
    emulator = EmulatorServer(EmulatorConfig(token_secret=secrets.token_hex(16))).start()
    try:
        return await _run(config, emulator, work, output)
    finally:
        emulator.stop()
        if config.keep_work:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


async def _run(config: DemoConfig, emulator: EmulatorServer, work: Path, output: Path) -> int:
    say(f"1. emulator (DDS, DMS, domain server) on {emulator.base_url}")
    say(f"2. synthetic scene, {config.views} views of {config.size}: python -m pipeline synthetic")
    summary = make_scene(work / "scene", config.views, config.size)
    async with httpx.AsyncClient(timeout=60) as http:
        scene = await seed_scene(http, emulator, summary)
        say(f"3. domain {scene.domain_id}, as the reconstruction server leaves it:")
        for name, data_type, size in scene.items:
            say(f"     {name:<42} {data_type:<22} {size:>9,} B")
        task_id = await create_job(http, emulator, scene)
    say(f"4. job created; task {task_id}, input {scene.cid}")
    log_path = output / "node.log"
    say(f"5. node: python -m app in lease mode, {config.steps} steps (log: {log_path})")
    started = time.monotonic()
    port = free_port()
    node_url = f"http://127.0.0.1:{port}"
    with running_node(emulator, work, log_path, config, port) as node:
        viewer = asyncio.create_task(announce_viewer(node_url))
        record = await follow(emulator, task_id, node, config.timeout_s)
        say(f"   task {record['status']} after {time.monotonic() - started:.0f} s")
        status = _report(emulator, scene, record, output, log_path)
        url = await viewer_url(viewer)
        if url is not None:
            say(f"viewer: {url}")
        if config.serve:
            await serve(node, node_url)
    return status


async def announce_viewer(node_url: str) -> str | None:
    """Waits for the node's job to appear and prints its viewer page (watch it train live);
    returns that URL, or ``None`` when the node never listed a job."""
    async with httpx.AsyncClient(base_url=node_url, timeout=5) as http:
        for _ in range(1200):
            try:
                jobs = (await http.get("/jobs", params={"limit": 1})).json()["data"]
            except (httpx.HTTPError, ValueError, KeyError):
                jobs = []
            if jobs:
                url = f"{node_url}/jobs/{jobs[0]['id']}/view"
                say(f"   viewer (live while it trains): {url}")
                return url
            await asyncio.sleep(0.5)
    return None


async def viewer_url(announcing: asyncio.Task[str | None]) -> str | None:
    if not announcing.done():
        announcing.cancel()
        return None
    return announcing.result()


async def serve(node: subprocess.Popen[bytes], node_url: str) -> None:
    """``--serve``: the node stays up (its viewer too) until Ctrl-C (SIGINT) or SIGTERM, then
    returns (the caller stops the node); raises ``RuntimeError`` if the node exits first.

    The signals set an event of this loop's own (not asyncio's KeyboardInterrupt, which a
    stop must not depend on), and the node is polled, so no thread is left waiting on it."""
    say(f"serving the viewer (all jobs: {node_url}/viewer); Ctrl-C stops")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not stop.is_set():
            if node.poll() is not None:
                raise RuntimeError(f"the node exited with status {node.returncode}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SERVE_POLL_S)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    say("stopping the node")


async def follow(
    emulator: EmulatorServer, task_id: str, node: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any]:
    """Prints the progress DMS receives (a new stage at once, training updates at most every
    5 s); returns the task record once it ended."""
    deadline = time.monotonic() + timeout_s
    shown, shown_head, shown_at = "", "", 0.0
    events_seen = 0
    while time.monotonic() < deadline:
        record = emulator.state.task(task_id).to_json()
        for event in record["events"][events_seen:]:
            if event.get("message") == "training metrics":
                say(f"  {describe_metrics(event)}")
        events_seen = len(record["events"])
        line = describe(record["progress"]) if record["heartbeats"] else "[  0%] waiting for a node"
        head = line.split("]", 1)[-1].split(":")[0]  # the stage, without the percentage
        if line != shown and (head != shown_head or time.monotonic() - shown_at >= 5.0):
            say(f"  {line}")
            shown, shown_head, shown_at = line, head, time.monotonic()
        if record["status"] in FINAL_STATUSES:
            return record
        if node.poll() is not None:
            raise RuntimeError(f"the node exited with status {node.returncode}")
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the task did not finish within {timeout_s:.0f} s")


def fetch_artifacts(
    emulator: EmulatorServer, domain_id: str, receipt: dict[str, Any], output: Path
) -> list[tuple[str, str, int, Path]]:
    """Copies every artifact of the complete receipt from the domain server into ``output``;
    returns ``(name, data_type, size in bytes, local path)`` of each."""
    fetched = []
    for artifact in receipt["meta"]["artifacts"]:
        content = emulator.state.read_data(domain_id, artifact["id"])
        path = output / f"{artifact['name']}{EXTENSIONS.get(artifact['data_type'], '.bin')}"
        path.write_bytes(content)
        fetched.append((artifact["name"], artifact["data_type"], len(content), path))
    return fetched


def _report(
    emulator: EmulatorServer,
    scene: SeededScene,
    record: dict[str, Any],
    output: Path,
    log_path: Path,
) -> int:
    receipt = record["complete"] or record["fail"]
    (output / "receipt.json").write_text(json.dumps(receipt, indent=2) + "\n")
    if record["status"] != "completed":
        say(f"the task {record['status']}: {json.dumps(receipt)}", sys.stderr)
        say(f"see {log_path}", sys.stderr)
        return 1
    say(f"6. artifacts downloaded from the domain server into {output}:")
    print_artifacts(fetch_artifacts(emulator, scene.domain_id, receipt, output))
    say(f"   receipt (POST /tasks/{record['id']}/complete), also in {output / 'receipt.json'}:")
    say(json.dumps(receipt, indent=2))
    return 0
