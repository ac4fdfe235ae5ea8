"""Start-up objects are frozen, so a full collection in the node's loop stays short."""

from __future__ import annotations

import subprocess
import sys

from app import PROJECT_ROOT

# A node-sized heap (the app and its services imported and built), then one full collection
# before and after the freeze, each timed by the thread's CPU clock.
_PROBE = """
import gc, time
from app.heap import freeze_startup_heap
from app.main import create_app
from app.settings import Settings
app = create_app(Settings(tasks_root="/nonexistent/tasks", splatter_data_dir="/nonexistent/d"))
keep = [{"i": i} for i in range(50_000)]  # long-lived state, as a running node holds
def full_gc_cpu():
    t = time.thread_time(); gc.collect(); return time.thread_time() - t
before = min(full_gc_cpu() for _ in range(3))
frozen = freeze_startup_heap()
after = min(full_gc_cpu() for _ in range(3))
print(frozen, before, after)
"""


def test_freezing_the_start_up_heap_shortens_full_collections() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    frozen, before, after = result.stdout.split()
    assert int(frozen) > 50_000
    assert float(after) < float(before) / 5, result.stdout
