"""The ``nerfstudio`` trainer: the reference's own tools instead of :func:`pipeline.train.train`.

For parity with the reference pipeline on a GPU node (pipeline-reference.md §1.3 steps 3–4)::

    ns-train splatfacto --vis tensorboard --logging.local-writer.max-log-size 0
        --logging.steps-per-log 1000 --data <job>/refined/nerfstudio-data
        --experiment-name splatter --method-name splatfacto --timestamp /
        --output-dir <job>/refined [--max-num-iterations N]
        nerfstudio-data --center-method none --orientation-method none --auto-scale-poses False
    ns-export gaussian-splat --load-config <job>/refined/splatter/splatfacto/config.yml
        --output-dir <job>/refined/splatter

``--max-num-iterations`` is a trainer option, so it sits with the method's options, before the
``nerfstudio-data`` dataparser subcommand (tyro parses options after a subcommand as that
subcommand's); without a step count nothing is added and splatfacto's default 30,000 applies,
as in the reference. The ``/`` timestamp collapses in nerfstudio's run-folder f-string, so the
run folder is ``refined/splatter/splatfacto/``.

Frames: with the reference's dataparser flags, training happens in the frame of
``transforms.json`` (nerfstudio's: ``A = applied_transform`` times COLMAP, raw COLMAP units) and
``ns-export`` writes ``splat.ply`` there without any inverse transform (§3.6). The exported
Gaussians are turned back into the COLMAP frame (``Aᵀ``, SH bands included) so that they enter
the same export step as the builtin trainer's: :func:`pipeline.export.export_all` rewrites
``splat.ply`` in nerfstudio's frame (the same Gaussians, float32 rounding aside) and writes
``splat_rot.*`` in the output frame.

Progress: nerfstudio's local writer (``nerfstudio/utils/writer.py``, ``LocalWriter``; flushed by
the loop in ``nerfstudio/engine/trainer.py`` every ``steps-per-log`` steps, step 0 included)
prints a table row that starts with ``<step> (<percent>%)`` padded to 20 characters, followed
by the tracked statistics (iteration time, ETA, rays/s, …). Only that leading field is parsed:
the columns after it follow the order in which that step's events were recorded, which can
change between rows while the header is printed only for the first rows, and no loss is among
the statistics printed to the console (``Train Loss`` goes to tensorboard only). The ETA is
therefore measured here from the rate between parsed rows. With the reference's
``--logging.steps-per-log 1000`` progress moves every 1000 steps; the flag is kept for parity.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.contract import JobLayout
from pipeline.errors import ExternalToolError, InputError, PlyFormatError, TrainingError
from pipeline.export.ply import read_ply
from pipeline.export.rotate import COLMAP_TO_NERFSTUDIO, rotate_splats
from pipeline.progress import NullProgress, ProgressSink
from pipeline.splats import Splats
from pipeline.train.external_tool import failure_message, require_tool, run_tool
from pipeline.train.loop import TrainResult

__all__ = [
    "SPLATFACTO_DEFAULT_STEPS",
    "NerfstudioRun",
    "StepProgress",
    "check_dataset",
    "nerfstudio_to_colmap",
    "ns_export_argv",
    "ns_train_argv",
    "parse_step",
    "require_tools",
    "train_with_nerfstudio",
]

log = logging.getLogger(__name__)

NS_TRAIN = "ns-train"
NS_EXPORT = "ns-export"
EXPERIMENT_NAME = "splatter"
METHOD_NAME = "splatfacto"
# splatfacto's TrainerConfig.max_num_iterations (nerfstudio 1.1.5 method_configs).
SPLATFACTO_DEFAULT_STEPS = 30_000
TRAIN_FAILED = "failed to train gaussian splat"
EXPORT_FAILED = "failed to export gaussian splat"
_ROW = re.compile(r"^\s*(\d+) \((\d+(?:\.\d+)?)%\)(?:\s|$)")


@dataclass(frozen=True)
class NerfstudioRun:
    """Where ``ns-train`` and ``ns-export`` read and write inside a job folder.

    Attributes:
        data_dir: the dataset (``refined/nerfstudio-data``, holding ``transforms.json``).
        output_dir: ``ns-train``'s ``--output-dir`` (``refined``).
        export_dir: ``ns-export``'s ``--output-dir`` (``refined/splatter``).
    """

    data_dir: Path
    output_dir: Path
    export_dir: Path

    @classmethod
    def for_job(cls, layout: JobLayout) -> NerfstudioRun:
        return cls(layout.nerfstudio_dir, layout.root / "refined", layout.splatter_dir)

    @property
    def run_dir(self) -> Path:
        """``<output>/splatter/splatfacto`` (the ``/`` timestamp adds no folder)."""
        return self.output_dir / EXPERIMENT_NAME / METHOD_NAME

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.yml"

    @property
    def splat_ply(self) -> Path:
        """Where ``ns-export gaussian-splat`` writes (its default ``output_filename``)."""
        return self.export_dir / "splat.ply"


def ns_train_argv(run: NerfstudioRun, steps: int | None = None) -> list[str]:
    """The reference's ``ns-train`` command (§1.3 step 3), plus ``--max-num-iterations steps``
    when ``steps`` is given."""
    argv = [NS_TRAIN, METHOD_NAME, "--vis", "tensorboard"]
    argv += ["--logging.local-writer.max-log-size", "0", "--logging.steps-per-log", "1000"]
    argv += ["--data", str(run.data_dir), "--experiment-name", EXPERIMENT_NAME]
    argv += ["--method-name", METHOD_NAME, "--timestamp", "/", "--output-dir", str(run.output_dir)]
    if steps is not None:
        argv += ["--max-num-iterations", str(steps)]
    argv += ["nerfstudio-data", "--center-method", "none", "--orientation-method", "none"]
    return [*argv, "--auto-scale-poses", "False"]


def ns_export_argv(run: NerfstudioRun) -> list[str]:
    """The reference's ``ns-export`` command (§1.3 step 4)."""
    return [
        NS_EXPORT, "gaussian-splat", "--load-config", str(run.config_path),
        "--output-dir", str(run.export_dir),
    ]  # fmt: skip


def parse_step(line: str) -> int | None:
    """The step of a nerfstudio progress-table row (``"1000 (3.33%)   ..."``), else ``None``."""
    match = _ROW.match(line)
    return int(match.group(1)) if match else None


class StepProgress:
    """Turns nerfstudio's console rows into ``train`` progress events.

    Args:
        progress: where events go.
        total: the run's step count (the ``max_iter`` nerfstudio divides by).
        clock: seconds, monotonic (tests pass a fake).
    """

    def __init__(
        self, progress: ProgressSink, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.progress, self.total, self._clock = progress, total, clock
        self._first: tuple[float, int] | None = None
        self.last_step: int | None = None

    def feed(self, line: str) -> None:
        """One stdout line of ``ns-train``; rows become events, anything else is ignored."""
        step = parse_step(line)
        if step is None:
            return
        now = self._clock()
        if self._first is None:
            self._first = (now, step)
        first_t, first_step = self._first
        rate = (step - first_step) / (now - first_t) if now > first_t else 0.0
        eta = (self.total - step) / rate if rate > 0 else None
        self.last_step = step
        self.progress.progress(
            "train", 100.0 * step / self.total, step=step, total=self.total, eta_s=eta
        )

    def finish(self) -> None:
        """``ns-train`` exited 0: every step is done."""
        total = self.total
        self.progress.progress("train", 100.0, step=total, total=total, eta_s=0.0)


def check_dataset(data_dir: Path) -> int:
    """Check that ``transforms.json`` in ``data_dir`` is there and every ``file_path`` names an
    existing image, resolved as nerfstudio does (``data_dir / file_path``); returns the number
    of frames.

    Raises:
        InputError: no or unreadable ``transforms.json``, no frames, or missing images (listed).
    """
    path = data_dir / "transforms.json"
    try:
        frames = json.loads(path.read_text(encoding="utf-8"))["frames"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"nerfstudio dataset unusable: cannot read {path}: {exc}") from exc
    if not frames:
        raise InputError(f"nerfstudio dataset unusable: {path} lists no frames")
    missing = [f["file_path"] for f in frames if not (data_dir / f["file_path"]).is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise InputError(f"nerfstudio dataset unusable: images not found from {data_dir}: {shown}")
    return len(frames)


def nerfstudio_to_colmap(splats: Splats) -> Splats:
    """Gaussians in nerfstudio's frame (``A · COLMAP``) expressed in the COLMAP frame (``Aᵀ``);
    positions, orientations and SH bands 1–3 all turn."""
    return rotate_splats(splats, COLMAP_TO_NERFSTUDIO.T, rotate_sh_bands=True)


def train_with_nerfstudio(
    layout: JobLayout, steps: int | None = None, progress: ProgressSink | None = None
) -> TrainResult:
    """Run ``ns-train`` then ``ns-export`` on a job whose ``refined/nerfstudio-data`` is written.

    Args:
        layout: the job folder.
        steps: training steps (``--max-num-iterations``); ``None``: splatfacto's 30,000.
        progress: receives ``train`` progress events.

    Returns:
        The exported Gaussians in the COLMAP frame (``metrics`` empty: nerfstudio's evaluation
        goes to tensorboard, ``resumed_from`` ``None``: every call trains afresh).

    Raises:
        ToolUnavailableError: ``ns-train`` or ``ns-export`` is not on ``PATH``.
        ExternalToolError: a tool failed (exit status and its last stderr lines in the message)
            or left no ``config.yml`` / ``splat.ply``.
        PlyFormatError: the exported ``splat.ply`` is not a usable 3DGS PLY.
        TrainingError: the export holds no Gaussians.
        InputError: the dataset's ``transforms.json`` is missing or names missing images.
    """
    started = time.perf_counter()
    run = NerfstudioRun.for_job(layout)
    tools = require_tools()
    check_dataset(run.data_dir)
    total = steps if steps is not None else SPLATFACTO_DEFAULT_STEPS
    _run_train(run, tools[NS_TRAIN], steps, StepProgress(progress or NullProgress(), total))
    _run_export(run, tools[NS_EXPORT])
    splats = nerfstudio_to_colmap(_read_export(run.splat_ply))
    duration = time.perf_counter() - started
    return TrainResult(splats, {}, total, duration, duration, None)


def require_tools() -> dict[str, str]:
    """``{"ns-train": path, "ns-export": path}`` as found on ``PATH``.

    Raises:
        ToolUnavailableError: one is missing (the message names it and the way out).
    """
    return {name: _require(name) for name in (NS_TRAIN, NS_EXPORT)}


def _require(name: str) -> str:
    hint = "the GPU image installs it; use --trainer builtin"
    return require_tool(name, f"nerfstudio trainer unavailable: {name} not found on PATH ({hint})")


def _run_train(run: NerfstudioRun, program: str, steps: int | None, rows: StepProgress) -> None:
    argv = [program, *ns_train_argv(run, steps)[1:]]
    _run_step(argv, NS_TRAIN, TRAIN_FAILED, run.config_path, on_stdout_line=rows.feed)
    rows.finish()


def _run_export(run: NerfstudioRun, program: str) -> None:
    argv = [program, *ns_export_argv(run)[1:]]
    _run_step(argv, NS_EXPORT, EXPORT_FAILED, run.splat_ply)


def _run_step(
    argv: list[str],
    tool: str,
    failed: str,
    product: Path,
    on_stdout_line: Callable[[str], None] | None = None,
) -> None:
    """Runs one nerfstudio tool that must write ``product``; raises :class:`ExternalToolError`
    with the reference's ``failed`` message when it exits non-zero or writes nothing."""
    product.unlink(missing_ok=True)  # a stale one must not pass for this run's
    log.info("running %s: %s", tool, " ".join(argv))
    result = run_tool(argv, on_stdout_line=on_stdout_line)
    if result.returncode != 0:
        message = failure_message(failed, tool, result)
        raise ExternalToolError(message, tool, result.returncode, result.stderr_tail)
    if not product.is_file():
        raise ExternalToolError(f"{failed}: {tool} exited 0 but wrote no {product}", tool, 0)


def _read_export(path: Path) -> Splats:
    """``splat.ply`` as written by ``ns-export`` (nerfstudio's frame)."""
    try:
        splats = read_ply(path).splats
    except PlyFormatError as exc:
        raise PlyFormatError(f"{EXPORT_FAILED}: unusable {path.name}: {exc}") from exc
    if len(splats) == 0:
        raise TrainingError(f"nerfstudio training produced no Gaussians: {path} is empty")
    return splats
