"""``python -m app.demo`` (``make demo``): one whole job, end to end, on loopback only.

1. Start the DDS / DMS / domain-server emulator on a free 127.0.0.1 port.
2. Make a small synthetic scene (``python -m pipeline synthetic``): a recording, its refined
   COLMAP model and manifest.
3. Upload it to the emulated domain server exactly as the reconstruction server leaves it
   (protocol §3.11): ``dmt_recording_<scan>`` (``dmt_recording_mp4``),
   ``colmap_{cameras,frames,images,points3d,rigs}_bin_<ts>`` (data type = the prefix) and
   ``refined_manifest_<ts>`` (``refined_manifest_json``, ``dataIDs`` = refined scan names).
4. Create a job (``POST {DMS}/jobs`` with the app token) whose input CID is the manifest's
   domain data URL.
5. Start the node (``python -m app``, a separate process) in lease mode against the emulator;
   it registers, logs in, leases the task, heartbeats, trains, uploads and completes it.
6. Show the progress DMS receives, then download the uploaded artifacts into ``demo-output/``
   and print them with the receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from app import CAPABILITY, PROJECT_ROOT
from domain_client.domain import DomainClient
from domain_client.emulator import EmulatorConfig, EmulatorServer
from domain_client.tokens import DomainToken

__all__ = [
    "DemoConfig", "SeededScene", "child_env", "free_port", "main", "run_demo", "scene_items",
    "seed_scene", "stop_process",
]  # fmt: skip

#: (file under refined/global/refined_sfm_combined/, name prefix = data type), §3.11.
COLMAP_ITEMS: tuple[tuple[str, str], ...] = (
    ("cameras.bin", "colmap_cameras_bin"),
    ("frames.bin", "colmap_frames_bin"),
    ("images.bin", "colmap_images_bin"),
    ("points3D.bin", "colmap_points3d_bin"),
    ("rigs.bin", "colmap_rigs_bin"),
)
#: File extension of each artifact data type, for the downloaded copies.
EXTENSIONS = {
    "splat_data": ".splat",
    "splat_preview_top": ".jpg",
    "splat_preview_angle": ".jpg",
    "splat_preview_video": ".mp4",
}
FINAL_STATUSES = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Attributes:
        output: where the downloaded artifacts, the receipt and the node's log go.
        steps: training steps (``SPLATTER_ITERATIONS``).
        views: frames of the synthetic recording.
        size: synthetic frame size ``WxH`` in pixels.
        threads: CPU threads of the pipeline child (``SPLATTER_THREADS``).
        previews: render and upload the preview stills and the 1280×720 orbit video.
        timeout_s: give up after this many seconds of waiting for the task.
        keep_work: keep the temporary folder (scene, job folders, node database).
    """

    output: Path = Path("demo-output")
    steps: int = 500
    views: int = 36
    size: str = "160x120"
    threads: int | None = None
    previews: bool = True
    timeout_s: float = 900.0
    keep_work: bool = False


@dataclass(frozen=True)
class SeededScene:
    """The scene as domain data: its domain, the manifest's id and its CID."""

    domain_id: str
    manifest_name: str
    manifest_id: str
    cid: str
    items: list[tuple[str, str, int]]


def _say(text: str, stream: TextIO = sys.stdout) -> None:
    print(text, file=stream, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- 2. the synthetic scene ---------------------------------------------------------------------


def make_scene(folder: Path, config: DemoConfig) -> dict[str, Any]:
    """Runs ``python -m pipeline synthetic``; returns its summary (the last JSON line)."""
    command = [
        sys.executable, "-m", "pipeline", "synthetic", "--job-root", str(folder),
        "--views", str(config.views), "--size", config.size,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, env=child_env()
    )
    if result.returncode != 0:
        raise RuntimeError(f"synthetic scene failed:\n{result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def child_env(**extra: str) -> dict[str, str]:
    """This environment with the project on ``PYTHONPATH`` and ``extra`` set."""
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env


# --- 3. the scene as domain data ----------------------------------------------------------------


async def seed_scene(
    http: httpx.AsyncClient, emulator: EmulatorServer, summary: dict[str, Any]
) -> SeededScene:
    """Uploads the scene through the domain server's API, named as the reconstruction server
    names its outputs (protocol §3.11)."""
    domain_id = str(uuid.uuid4())
    grant = emulator.state.issue_domain_token(domain_id)
    domain = DomainClient(
        http, emulator.domain_server_url, domain_id, DomainToken(grant.token), "splatter-demo"
    )
    uploads = await asyncio.to_thread(scene_items, summary, domain_id, emulator.domain_server_url)
    stored = [await domain.create(name, data_type, content) for name, data_type, content in uploads]
    manifest_item = stored[-1]
    cid = f"{emulator.domain_server_url}/api/v1/domains/{domain_id}/data/{manifest_item.id}"
    items = [(name, data_type, len(content)) for name, data_type, content in uploads]
    return SeededScene(domain_id, summary["manifest_name"], manifest_item.id, cid, items)


def scene_items(
    summary: dict[str, Any], domain_id: str, server_url: str
) -> list[tuple[str, str, bytes]]:
    """``(name, data_type, content)`` of the recording, the COLMAP binaries and the manifest
    (last), as the reconstruction server uploads them; the manifest names this domain."""
    suffix = str(summary["manifest_name"]).removeprefix("refined_manifest")
    scan = str(summary["config"]["scan"])
    items = [(f"dmt_recording_{scan}", "dmt_recording_mp4", Path(summary["video"]).read_bytes())]
    model = Path(summary["model"])
    for file_name, prefix in COLMAP_ITEMS:
        items.append((f"{prefix}{suffix}", prefix, (model / file_name).read_bytes()))
    manifest = json.loads(Path(summary["manifest"]).read_text())
    manifest.update(domainID=domain_id, domainServerURL=server_url)
    items.append((summary["manifest_name"], "refined_manifest_json", json.dumps(manifest).encode()))
    return items


# --- 4. the job ---------------------------------------------------------------------------------


async def create_job(http: httpx.AsyncClient, emulator: EmulatorServer, scene: SeededScene) -> str:
    """``POST {DMS}/jobs`` with the app token (§1.12); returns the task id."""
    body = {
        "label": "splatter demo",
        "domain_id": scene.domain_id,
        "priority": 0,
        "meta": {},
        "tasks": [
            {"label": "splat", "stage": "splatter", "capability": CAPABILITY,
             "capability_filters": {}, "priority": 0, "inputs_cids": [scene.cid],
             "outputs_prefix": None, "mode": "public", "meta": {}, "max_attempts": 1}
        ],
        "edges": [],
    }  # fmt: skip
    app_token = emulator.state.config.app_token
    response = await http.post(
        f"{emulator.dms_base_url}/jobs", json=body, headers={"Authorization": f"Bearer {app_token}"}
    )
    response.raise_for_status()
    task_id: str = response.json()["tasks"][0]["id"]
    return task_id


# --- 5. the node --------------------------------------------------------------------------------


@contextlib.contextmanager
def running_node(
    emulator: EmulatorServer, work: Path, log_path: Path, config: DemoConfig
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m app`` in lease mode against the emulator; SIGTERM on the way out."""
    env = child_env(
        REG_SECRET=emulator.state.config.registration_secret,
        SECP256K1_PRIVHEX=secrets.token_hex(32),
        DMS_BASE_URL=emulator.dms_base_url,
        DDS_BASE_URL=emulator.dds_base_url,
        SPLATTER_HOST="127.0.0.1",
        SPLATTER_PORT=str(free_port()),
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


# --- 6. progress, artifacts, receipt ------------------------------------------------------------


def describe(progress: Any) -> str:
    """One line for a progress JSON value (protocol §3.7 shapes)."""
    if not isinstance(progress, dict) or not progress:
        return "[  0%] leased"
    pct = progress.get("pct", progress.get("progress", 0))
    stage = progress.get("pipeline_stage") or progress.get("stage", "")
    text = f"[{pct:>3}%] {stage} {progress.get('status', '')}".rstrip()
    if "step" in progress:
        text += f": step {progress['step']}/{progress.get('total', '?')}"
        if isinstance(progress.get("loss"), int | float):
            text += f", loss {progress['loss']:.4f}"
        if "gaussians" in progress:
            text += f", {progress['gaussians']} Gaussians"
        if isinstance(progress.get("eta_s"), int | float):
            text += f", ~{progress['eta_s']:.0f} s left"
    return text


def describe_metrics(event: dict[str, Any]) -> str:
    """One line for a ``training metrics`` job event (held-out PSNR / SSIM)."""
    parts = [f"{event['views']} held-out views" if "views" in event else "held-out views"]
    if isinstance(event.get("psnr"), int | float):
        parts.append(f"PSNR {event['psnr']:.2f} dB")
    if isinstance(event.get("ssim"), int | float):
        parts.append(f"SSIM {event['ssim']:.3f}")
    step = f" at step {event['step']}" if "step" in event else ""
    return f"       evaluation{step}: " + ", ".join(parts)


async def follow(
    emulator: EmulatorServer, task_id: str, node: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any]:
    """Prints the progress DMS receives (a new stage at once, training updates at
    most every 5 s); returns the task record once it ended."""
    deadline = time.monotonic() + timeout_s
    shown, shown_head, shown_at = "", "", 0.0
    events_seen = 0
    while time.monotonic() < deadline:
        record = emulator.state.task(task_id).to_json()
        for event in record["events"][events_seen:]:
            if event.get("message") == "training metrics":
                _say(f"  {describe_metrics(event)}")
        events_seen = len(record["events"])
        line = describe(record["progress"]) if record["heartbeats"] else "[  0%] waiting for a node"
        head = line.split("]", 1)[-1].split(":")[0]  # the stage, without the percentage
        if line != shown and (head != shown_head or time.monotonic() - shown_at >= 5.0):
            _say(f"  {line}")
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
    """Copies every artifact of the complete receipt from the domain server into ``output``."""
    fetched = []
    for artifact in receipt["meta"]["artifacts"]:
        content = emulator.state.read_data(domain_id, artifact["id"])
        path = output / f"{artifact['name']}{EXTENSIONS.get(artifact['data_type'], '.bin')}"
        path.write_bytes(content)
        fetched.append((artifact["name"], artifact["data_type"], len(content), path))
    return fetched


def print_artifacts(fetched: Sequence[tuple[str, str, int, Path]]) -> None:
    width = max(len(name) for name, *_ in fetched)
    for name, data_type, size, path in fetched:
        _say(f"  {name:<{width}}  {data_type:<20}  {size:>10,} B  {path}")


# --- the whole demo -----------------------------------------------------------------------------


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
            _say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


async def _run(config: DemoConfig, emulator: EmulatorServer, work: Path, output: Path) -> int:
    _say(f"1. emulator (DDS, DMS, domain server) on {emulator.base_url}")
    _say(f"2. synthetic scene, {config.views} views of {config.size}: python -m pipeline synthetic")
    summary = make_scene(work / "scene", config)
    async with httpx.AsyncClient(timeout=60) as http:
        scene = await seed_scene(http, emulator, summary)
        _say(f"3. domain {scene.domain_id}, as the reconstruction server leaves it:")
        for name, data_type, size in scene.items:
            _say(f"     {name:<42} {data_type:<22} {size:>9,} B")
        task_id = await create_job(http, emulator, scene)
    _say(f"4. job created; task {task_id}, input {scene.cid}")
    log_path = output / "node.log"
    _say(f"5. node: python -m app in lease mode, {config.steps} steps (log: {log_path})")
    started = time.monotonic()
    with running_node(emulator, work, log_path, config) as node:
        record = await follow(emulator, task_id, node, config.timeout_s)
    _say(f"   task {record['status']} after {time.monotonic() - started:.0f} s")
    return _report(emulator, scene, record, output, log_path)


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
        _say(f"the task {record['status']}: {json.dumps(receipt)}", sys.stderr)
        _say(f"see {log_path}", sys.stderr)
        return 1
    _say(f"6. artifacts downloaded from the domain server into {output}:")
    print_artifacts(fetch_artifacts(emulator, scene.domain_id, receipt, output))
    _say(f"   receipt (POST /tasks/{record['id']}/complete), also in {output / 'receipt.json'}:")
    _say(json.dumps(receipt, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(prog="python -m app.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=defaults.output)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="training steps")
    parser.add_argument("--views", type=int, default=defaults.views, help="frames of the scan")
    parser.add_argument("--size", default=defaults.size, help="frame size WxH")
    parser.add_argument("--threads", type=int, default=None, help="pipeline CPU threads")
    parser.add_argument(
        "--no-previews", dest="previews", action="store_false", help="skip the preview renders"
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = DemoConfig(
        output=args.output,
        steps=args.steps,
        views=args.views,
        size=args.size,
        threads=args.threads,
        previews=args.previews,
        timeout_s=args.timeout,
        keep_work=args.keep_work,
    )
    try:
        return asyncio.run(run_demo(config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
