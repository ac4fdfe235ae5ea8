"""The viewer's figures: first drawn frame in headless Chromium, snapshot cost, fallback render.

Scenes are the synthetic room (:func:`pipeline.synthetic.scene.build_room`, seeded) at 9k, 50k
and 200k Gaussians. Browser rows load the page of ``python -m pipeline view`` in Debian's
Chromium with SwiftShader (software WebGL on the CPU, so an upper bound for a real GPU); they
are left out, saying why, where Chromium or ``make viewer``'s files are missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.table import BenchRow, BenchTable, best_of
from pipeline.export.splat_format import write_splat
from pipeline.render import get_rasterizer
from pipeline.splats import Splats
from pipeline.synthetic.scene import build_room
from pipeline.train.snapshot import DEFAULT_SNAPSHOT_SECS, SnapshotWriter
from pipeline.view.camera import first_view
from pipeline.view.fallback import FallbackRenderer, RenderRequest
from pipeline.view.page import viewer_built

ROOM_UP = (0.0, -1.0, 0.0)
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def room(n: int) -> Splats:
    g = build_room(n, torch.Generator().manual_seed(0)).gaussians
    return Splats(g.means, g.quats, torch.log(g.scales), torch.logit(g.opacities), g.sh)


def first_frame_seconds(path: Path, loads: int = 3) -> float:
    """Best-of-``loads`` seconds from navigation start to the first drawn frame."""
    from playwright.sync_api import sync_playwright

    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "view", str(path), "--port", "0", "--no-browser",
         "--up=-y"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        url = child.stdout.readline().split(": ", 1)[1].strip()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=CHROMIUM_ARGS,
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            times = []
            for _ in range(loads):
                page.goto(url)
                page.wait_for_function("window.firstReadyMs !== undefined", timeout=600_000)
                times.append(float(page.evaluate("window.firstReadyMs")) / 1000.0)
            browser.close()
        return min(times)
    finally:
        child.terminate()
        child.wait(timeout=30)


def bench_first_frame(table: BenchTable, folder: Path) -> None:
    if not viewer_built() or shutil.which("chromium") is None:
        print("  skipped: needs `make viewer` and Chromium (apt-get install chromium)")
        return
    for n in (9000, 200_000):
        path = folder / f"room_{n}.splat"
        write_splat(path, room(n))
        seconds = first_frame_seconds(path)
        table.add(BenchRow(f"viewer: page load → first drawn frame, {n // 1000}k Gaussians",
                           seconds, "s", note="headless Chromium, SwiftShader, 1280x720, "
                           "best of 3 loads"))  # fmt: skip


def bench_snapshot(table: BenchTable, folder: Path) -> None:
    splats = room(200_000)
    writer = SnapshotWriter(folder / "live", DEFAULT_SNAPSHOT_SECS, ROOM_UP)
    seconds = best_of(lambda: writer.write(1, splats), repeats=5)
    table.add(BenchRow("live snapshot write, 200k Gaussians", seconds, "s/snapshot",
                       note="filter + rotate + .splat + atomic replace"))  # fmt: skip
    share = 100.0 * seconds / DEFAULT_SNAPSHOT_SECS
    table.add(BenchRow("live snapshot cost, share of training time (200k, every 10 s)", share,
                       "%", target=5.0, note="one write per 10 s of training"))  # fmt: skip


def bench_fallback(table: BenchTable) -> None:
    splats = room(50_000)
    view = first_view(splats, ROOM_UP)
    renderer = FallbackRenderer(splats, view, get_rasterizer("cpu"), cache_size=0)
    yaws = iter(range(0, 3600, 7))
    renderer.jpeg(RenderRequest(yaw_deg=-1.0))  # compile the kernels
    seconds = best_of(lambda: renderer.jpeg(RenderRequest(yaw_deg=float(next(yaws)))), repeats=5)
    table.add(BenchRow("fallback render (JPEG), 50k Gaussians at 1280x720", seconds, "s",
                       note="CPU rasterizer, new pose each time (no cache)"))  # fmt: skip


def run(table: BenchTable) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        bench_snapshot(table, folder)
        bench_fallback(table)
        bench_first_frame(table, folder)
        print(f"  ({time.perf_counter() - started:.0f} s)")
