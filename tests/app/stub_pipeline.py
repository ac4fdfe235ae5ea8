"""A stand-in for ``python -m pipeline run`` that the supervisor tests start as a real child.

Usage: ``python stub_pipeline.py [--do ACTION]... run --job-root DIR [pipeline options]``, or
``... train DATA --out DIR [options]`` (then outputs go to DIR itself and ``require-file`` paths
are relative to DATA).
The actions run in order, then the stub exits 0 (unless an action exits first):

``stdout:TEXT`` / ``stderr:TEXT``   print one line
``lines:N``                         print N numbered lines on stdout and N on stderr
``long-line:BYTES``                 print one stdout line of that many bytes
``progress:STEPS``                  JSON-lines events of a whole run (5 stages, STEPS train steps)
``train-for:SECS``                  the same, training for SECS seconds (a step every 50 ms)
``train-forever``                   emit train progress events until killed
``write-outputs`` / ``write-splat`` write refined/splatter/ outputs (all / only the .splat), then
                                    a ``done`` event listing them
``write:PATH=TEXT``                  write TEXT to PATH (relative paths: under the job folder)
``done:NAME=PATH[,NAME=PATH]...``   a ``done`` event listing these outputs (relative paths: under
                                    the job folder)
``write-report`` / ``bad-report``   write refined/splatter/report.json (valid / not JSON); put it
                                    before ``write-outputs``, whose ``done`` event lists it
``write-sog``                       write refined/splatter/splat_rot.sog (not with --no-sog)
``record-args:FILE``                write argv, cwd and PYTHONPATH as JSON
``pid:FILE``                        write the stub's own pid
``sleep:SECS``                      sleep
``touch:FILE`` / ``wait-file:FILE`` create a file / wait until one exists (test sync points)
``ignore-sigterm``                  ignore SIGTERM from now on
``spawn-grandchild:PIDFILE``        start ``sleep 600`` in the same process group, record its pid
``kill-self:SIGNAL``                send SIGNAL (e.g. KILL) to itself
``error:MESSAGE``                   report a pipeline error (event + ``error:`` line), exit 1
``require-file:REL``                exit 1 unless ``<job root>/REL`` (train: ``DATA/REL``) is a file
``require-out:REL``                 exit 1 unless ``<job root>/REL`` (train: ``OUT/REL``) is a file
``once:FLAG=ACTION``                run ACTION only when the file FLAG does not exist yet, creating
                                    it first (a behaviour of the first run only)
``exit:CODE``                       exit with CODE
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The stub writes its events by hand, as an independent producer of the wire format of
# pipeline.contract (tests/pipeline/test_contract.py checks that these stages are the contract's).
STAGES = ("frames", "dataset", "train", "export", "preview", "report")  # a job: no sfm


def emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


def emit_run(job_root: Path, steps: int, step_s: float = 0.0) -> None:
    for stage in STAGES:
        emit({"event": "stage", "stage": stage, "status": "started"})
        if stage == "train":
            for step in range(1, steps + 1):
                time.sleep(step_s)
                emit(
                    {
                        "event": "progress",
                        "stage": "train",
                        "pct": 100.0 * step / steps,
                        "step": step,
                        "total": steps,
                        "loss": 1.0 / step,
                        "gaussians": 1000 + step,
                        "eta_s": float(steps - step),
                    }
                )
            emit({"event": "metrics", "stage": "train", "psnr": 21.5, "ssim": 0.7, "views": 2})
        else:
            emit({"event": "progress", "stage": stage, "pct": 100.0})
        emit({"event": "stage", "stage": stage, "status": "completed", "duration_s": 0.01})
    emit({"event": "done", "outputs": {}, "metrics": {}, "duration_s": 0.1})


def atomic_write(path: Path, text: str) -> None:
    """Tests poll for these files: they must never see one half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def write_outputs(out: Path, previews: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "splat_rot.splat").write_bytes(b"\x01" * 64)
    if previews:
        (out / "preview_top.jpg").write_bytes(b"top-jpeg")
        (out / "preview_angle.jpg").write_bytes(b"angle-jpeg")
        (out / "preview.mp4").write_bytes(b"mp4-video" * 16)  # the largest output: 144 bytes
    outputs = {p.name: str(p) for p in sorted(out.iterdir())}
    emit({"event": "done", "outputs": outputs, "metrics": {}, "duration_s": 0.1})


def train_forever() -> None:
    step = 0
    while True:
        step += 1
        emit(
            {
                "event": "progress",
                "stage": "train",
                "pct": step % 100,
                "step": step,
                "total": 10**9,
                "loss": 0.5,
                "gaussians": 1000,
                "eta_s": 1.0,
            }
        )
        time.sleep(0.01)


def run_action(action: str, args: argparse.Namespace) -> None:
    name, _, value = action.partition(":")
    job_root = Path(args.job_root)
    splatter = job_root if args.command == "train" else job_root / "refined" / "splatter"
    if name == "stdout":
        print(value, flush=True)
    elif name == "stderr":
        print(value, file=sys.stderr, flush=True)
    elif name == "lines":
        for i in range(int(value)):
            print(f"out {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
    elif name == "long-line":
        print("x" * int(value), flush=True)
    elif name == "progress":
        emit_run(job_root, int(value))
    elif name == "train-for":
        emit_run(job_root, max(1, round(float(value) / 0.05)), step_s=0.05)
    elif name == "train-forever":
        train_forever()
    elif name == "require-file":
        base = Path(args.data) if args.command == "train" else job_root
        if not (base / value).is_file():
            print(f"error: missing input {value}", flush=True)
            sys.exit(1)
    elif name == "require-out":
        if not (job_root / value).is_file():
            print(f"error: missing output {value}", flush=True)
            sys.exit(1)
    elif name == "once":
        flag, _, then = value.partition("=")
        if not Path(flag).exists():
            atomic_write(Path(flag), "ran")
            run_action(then, args)
    elif name in ("write-report", "bad-report"):
        out = splatter
        out.mkdir(parents=True, exist_ok=True)
        report = {"quality": {"psnr": 24.5, "ssim": 0.81, "views": 3, "flat_psnr": 14.0},
                  "training": {"gaussians": 1234, "steps": 40}}  # fmt: skip
        (out / "report.json").write_text(json.dumps(report) if name == "write-report" else "{")
    elif name == "write-sog":  # what `pipeline run` writes unless --no-sog
        if not args.no_sog:
            out = splatter
            out.mkdir(parents=True, exist_ok=True)
            (out / "splat_rot.sog").write_bytes(b"sog-zip" * 20)  # 140 bytes
    elif name in ("write-outputs", "write-splat"):
        write_outputs(splatter, previews=name == "write-outputs" and not args.no_preview)
    elif name == "write":
        path, _, text = value.partition("=")
        target = job_root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    elif name == "done":
        pairs = (entry.partition("=") for entry in value.split(","))
        outputs = {key: str(job_root / path) for key, _, path in pairs}
        emit({"event": "done", "outputs": outputs, "metrics": {}, "duration_s": 0.1})
    elif name == "record-args":
        atomic_write(
            Path(value),
            json.dumps(
                {
                    "argv": sys.argv[1:],
                    "cwd": str(Path.cwd()),
                    "pythonpath": os.environ.get("PYTHONPATH", ""),
                    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
                }
            ),
        )
    elif name == "pid":
        atomic_write(Path(value), str(os.getpid()))
    elif name == "sleep":
        time.sleep(float(value))
    elif name == "touch":
        atomic_write(Path(value), "ok")
    elif name == "wait-file":
        while not Path(value).exists():
            time.sleep(0.01)
    elif name == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif name == "spawn-grandchild":
        child = subprocess.Popen(["sleep", "600"])
        atomic_write(Path(value), str(child.pid))
    elif name == "kill-self":
        os.kill(os.getpid(), getattr(signal, f"SIG{value}"))
        time.sleep(5)
    elif name == "error":
        emit({"event": "error", "stage": "dataset", "message": value})
        print(f"error: {value}", file=sys.stderr, flush=True)
        sys.exit(1)
    elif name == "exit":
        sys.exit(int(value))
    else:
        sys.exit(f"stub_pipeline: unknown action {action!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--do", action="append", default=[])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--job-root", required=True)
    train = sub.add_parser("train")
    train.add_argument("data")
    train.add_argument("--out", dest="job_root", required=True)
    for command in (run, train):
        command.add_argument("--steps", type=int)
        command.add_argument("--backend", default="auto")
        command.add_argument("--threads", type=int)
        command.add_argument("--no-preview", action="store_true")
        command.add_argument("--no-sog", action="store_true")
        command.add_argument("--preview-size")
        command.add_argument("--preview-fps", type=float)
    args = parser.parse_args()
    for action in args.do:
        run_action(action, args)


if __name__ == "__main__":
    main()
