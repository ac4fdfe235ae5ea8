"""``python -m pipeline run --job-root DIR``: every step on a job folder (:mod:`pipeline.run`).

stdout carries only the JSON-lines events of :mod:`pipeline.progress` (anything else a library
prints is diverted to stderr); logs go to stderr. Exit codes: 0 success, 1 failure (the last
event is ``error`` and ``error: <reason>`` is the last stderr line), 2 bad arguments,
143 terminated by SIGTERM (during training after writing a checkpoint of the step in hand:
:mod:`pipeline.stop`; the ``error`` event then carries ``checkpoint_step``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pipeline.commands.sizes import size_argument
from pipeline.console import RichProgress, add_output_options, choose_progress
from pipeline.contract import DoneEvent, ErrorEvent
from pipeline.errors import PipelineError
from pipeline.preview import OrbitConfig, PreviewConfig
from pipeline.progress import ProgressSink
from pipeline.run import RunConfig, RunResult, StageTracker, run_job
from pipeline.stop import EXIT_TERMINATED, GracefulStop, StopRequested
from pipeline.train.snapshot import DEFAULT_SNAPSHOT_SECS

__all__ = ["DESCRIPTION", "add_parser", "add_training_options", "execute", "run_config"]

logger = logging.getLogger(__name__)

#: What a command runs: the stage tracker and the SIGTERM flag in, the finished run out.
Work = Callable[[StageTracker, GracefulStop], RunResult]


#: ``run --help``, in plain words.
DESCRIPTION = """\
python -m pipeline run --job-root DIR: train a splat from an Auki job folder.

The job folder holds one recording per scan and the refined COLMAP model:

  DIR/datasets/<scan>/Frames.mp4
  DIR/refined/global/refined_sfm_combined/   cameras.bin, images.bin, points3D.bin
                                             (rigs.bin, frames.bin optional)

Steps: frames (the video frames the model uses, into DIR/Frames), dataset, train, export,
preview, report. Outputs go to DIR/refined/splatter: splat.ply, splat_rot.ply,
splat_rot.splat, splat_rot.sog, the previews and the quality report (report.json,
report.html). A rerun resumes from the last checkpoint. Other capture layouts (COLMAP
projects, nerfstudio data, photos, videos): python -m pipeline train.

Progress: a progress bar on a terminal; JSON lines on stdout when stdout is not a terminal
(the node) or with --json; nothing with --quiet. Exit codes: 0 success, 1 failure (the
reason is the last stderr line, "error: ..."), 2 bad arguments, 143 stopped by SIGTERM
(training writes a checkpoint first).
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train a splat from a job folder and export it (steps 1-5)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--job-root", type=Path, required=True, help="the job folder (required)")
    add_training_options(parser)
    parser.add_argument(
        "--trainer",
        choices=["builtin", "nerfstudio"],
        default="builtin",
        help="builtin: this project's trainer; nerfstudio: the reference's ns-train splatfacto "
        "and ns-export (GPU image only; --backend then only renders previews) "
        "(default: builtin)",
    )
    parser.set_defaults(func=run_command)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``train`` share: steps, backend, threads, seed, hold-out,
    previews, resume."""
    parser.add_argument(
        "--steps",
        type=_positive_int,
        help="training steps (default: the profile's, 1000 on the CPU, 30000 on gsplat)",
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "cpu", "gsplat"],
        default="auto",
        help="rasterizer of the builtin trainer and of the previews; auto picks gsplat when "
        "CUDA works (default: auto)",
    )
    parser.add_argument(
        "--threads", type=_positive_int, help="CPU threads (default: torch's, all cores)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds training (default: 0)")
    parser.add_argument(
        "--eval-every",
        type=int,
        help="hold out every Nth image for evaluation, 0 for none (default: the reference's "
        "split, 90%% of the images evenly spaced for training, the rest held out)",
    )
    parser.add_argument(
        "--no-preview", action="store_true", help="skip preview rendering (default: render)"
    )
    orbit = OrbitConfig()
    parser.add_argument(
        "--preview-size",
        type=size_argument,
        default=(orbit.width, orbit.height),
        metavar="WxH",
        help="preview video and stills size (default: 1280x720)",
    )
    parser.add_argument(
        "--preview-fps",
        type=float,
        default=orbit.fps,
        help="preview frame rate; the orbit lasts 5 s (default: 30)",
    )
    parser.add_argument(
        "--no-sog",
        action="store_true",
        help="do not write splat_rot.sog (PlayCanvas SOG, best effort) in the export step "
        "(default: write it)",
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="ignore earlier progress and start afresh (default: resume)",
    )
    parser.add_argument(
        "--max-gaussians",
        type=_positive_int,
        help="stop growing at this many Gaussians (default: the profile's, 20000 on the CPU, "
        "no cap on gsplat)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=_non_negative_float,
        default=DEFAULT_SNAPSHOT_SECS,
        metavar="SECS",
        help="write the live training snapshot refined/splatter/live.splat at most every SECS "
        f"seconds, 0 for none (default: {DEFAULT_SNAPSHOT_SECS:g})",
    )
    add_output_options(parser)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def run_command(args: argparse.Namespace) -> int:
    config = run_config(args)
    return execute(
        lambda tracker, stop: run_job(args.job_root, config, tracker.progress, tracker, stop), args
    )


def run_config(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of the options ``run`` and ``train`` share."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return RunConfig(
        backend=args.backend,
        steps=args.steps,
        trainer=getattr(args, "trainer", "builtin"),
        seed=args.seed,
        eval_every=args.eval_every,
        previews=not args.no_preview,
        sog=not args.no_sog,
        resume=not args.no_resume,
        preview=_preview_config(args),
        snapshot_every_s=args.snapshot_every or None,
        max_gaussians=args.max_gaussians,
    )


def execute(work: Work, args: argparse.Namespace) -> int:
    """Runs ``work`` reporting as ``args`` and the terminal ask (:mod:`pipeline.console`: a
    progress bar, or JSON lines on stdout with a ``done`` or ``error`` event at the end, or
    nothing), with stray prints diverted to stderr and SIGTERM as a graceful stop (exit 143)."""
    events = sys.stdout
    progress = choose_progress(args, events)
    sys.stdout = sys.stderr  # keep stray prints out of the event stream
    tracker = StageTracker(progress)
    try:
        with GracefulStop().installed() as stop:
            return _run(work, progress, tracker, stop)
    finally:
        sys.stdout = events
        if isinstance(progress, RichProgress):
            progress.close()


def _preview_config(args: argparse.Namespace) -> PreviewConfig:
    width, height = args.preview_size
    try:
        orbit = OrbitConfig(width=width, height=height, fps=args.preview_fps)
    except ValueError as exc:
        raise PipelineError(f"bad preview settings: {exc}") from exc
    return PreviewConfig(orbit=orbit)


def _run(work: Work, progress: ProgressSink, tracker: StageTracker, stop: GracefulStop) -> int:
    try:
        result = work(tracker, stop)
    except PipelineError as exc:
        progress.emit(ErrorEvent(stage=tracker.current, message=str(exc)))
        raise
    except StopRequested as exc:
        return _fail(progress, tracker, str(exc), EXIT_TERMINATED, exc.checkpoint_step)
    except Exception as exc:  # a bug, not bad input: keep the traceback in the log
        logger.exception("pipeline run failed")
        return _fail(progress, tracker, f"internal error: {type(exc).__name__}: {exc}", 1)
    progress.emit(_done_event(result))
    return 0


def _fail(
    progress: ProgressSink,
    tracker: StageTracker,
    message: str,
    code: int,
    checkpoint_step: int | None = None,
) -> int:
    saved = {} if checkpoint_step is None else {"checkpoint_step": checkpoint_step}
    progress.emit(ErrorEvent(stage=tracker.current, message=message, **saved))
    print(f"error: {message}", file=sys.stderr)
    return code


def _done_event(result: RunResult) -> DoneEvent:
    return DoneEvent(
        outputs={name: str(path) for name, path in sorted(result.outputs.items())},
        metrics=result.metrics,
        warnings=result.warnings,
        duration_s=round(result.duration_s, 3),
    )
