"""Watch-folder latency: from the moment a dropped capture is stable to its job being queued.

The node's services run in this process (store, job service, watch door) on a temporary
``WATCH_DIR``; a capture in the Auki layout (one ``Frames.mp4`` of the given size) is renamed
into ``inbox/`` and the job store is polled every 2 ms. Latency = (job created) − (drop +
``WATCH_STABLE_SECS``): what the door adds on top of the quiet period it must wait (its tick,
the snapshot and the SHA-256 of the content). The pipeline child is ``true`` (the job itself is
not measured).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from app.services import start_services, stop_services
from app.settings import Settings
from bench.table import BenchRow, BenchTable

STABLE_S = 1.0
DROPS = 3


async def _latencies(root: Path, size_mb: int, polling: bool) -> list[float]:
    settings = Settings(
        tasks_root=root / "tasks",
        splatter_data_dir=root / "data",
        watch_dir=root / "watch",
        watch_stable_secs=STABLE_S,
        watch_polling=polling,
        watch_max_attempts=1,  # a retry would be counted as the next drop's job
        pipeline_command="true",
        min_free_disk_mb=0,
    )
    services = await start_services(settings)
    latencies = []
    try:
        for n in range(DROPS):
            staging = root / f".capture-{n}"
            (staging / "datasets" / "scan").mkdir(parents=True)
            (staging / "datasets" / "scan" / "Frames.mp4").write_bytes(os.urandom(size_mb << 20))
            before = services.store.count()
            staging.rename(root / "watch" / "inbox" / f"capture-{n}")
            dropped = time.monotonic()
            while services.store.count() == before:  # noqa: ASYNC110 (polls from outside)
                await asyncio.sleep(0.002)
            latencies.append(time.monotonic() - dropped - STABLE_S)
    finally:
        await stop_services(services)
    return latencies


def run(table: BenchTable) -> None:
    for size_mb in (1, 100):
        for polling in (False, True):
            with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
                found = asyncio.run(_latencies(Path(tmp), size_mb, polling))
            mode = "polling" if polling else "inotify"
            table.add(
                BenchRow(
                    f"watch stable→queued, {size_mb} MB capture, {mode}",
                    statistics.median(found),
                    "s",
                    target=1.0,
                    note=f"median of {DROPS} drops (max {max(found):.3f} s); "
                    f"WATCH_STABLE_SECS={STABLE_S:g}",
                )
            )
