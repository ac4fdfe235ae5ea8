"""A stand-in pipeline child for the /health benchmark: keeps the CPU busy like training.

``python -m bench.node.load_pipeline run --job-root DIR [--threads N] [--steps N]``: N threads
multiply 256×256 matrices (numpy releases the GIL, so N cores are busy) while the main thread
emits ``train`` progress events every 50 ms (more often than the real trainer's 0.5 s), then
writes ``refined/splatter/splat_rot.splat``. SIGTERM ends it at once.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np


def _burn(stop: threading.Event) -> None:
    matrix = np.random.default_rng(0).standard_normal((256, 256))
    while not stop.is_set():
        matrix = np.tanh(matrix @ matrix)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--job-root", required=True)
    run.add_argument("--threads", type=int, default=2)
    run.add_argument("--steps", type=int, default=600)
    run.add_argument("--backend", default="auto")
    run.add_argument("--no-preview", action="store_true")
    args = parser.parse_args()
    stop = threading.Event()
    for _ in range(args.threads):
        threading.Thread(target=_burn, args=(stop,), daemon=True).start()
    print(json.dumps({"event": "stage", "stage": "train", "status": "started"}), flush=True)
    for step in range(1, args.steps + 1):
        time.sleep(0.05)
        event = {"event": "progress", "stage": "train", "pct": 100 * step / args.steps,
                 "step": step, "total": args.steps, "loss": 1 / step, "gaussians": 100_000,
                 "eta_s": (args.steps - step) * 0.05}  # fmt: skip
        print(json.dumps(event), flush=True)
    stop.set()
    out = Path(args.job_root) / "refined" / "splatter"
    out.mkdir(parents=True, exist_ok=True)
    (out / "splat_rot.splat").write_bytes(b"\0" * 32)


if __name__ == "__main__":
    main()
