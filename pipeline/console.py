"""How a command shows its progress: one choice for ``run``, ``train``, ``preview`` and ``convert``.

- stdout is a terminal: a live `rich <https://rich.readthedocs.io>`_ progress bar per stage on
  stderr (step, loss, Gaussians and ETA while training), warnings, held-out metrics and the
  outputs at the end;
- stdout is not a terminal (a pipe, a file, the node) or ``--json``: the JSON lines of
  :mod:`pipeline.contract` on stdout;
- ``--quiet``: nothing (a failure still ends with ``error: <reason>`` on stderr).

Importing this module is cheap (``convert`` must stay fast): rich and the contract's pydantic
models are imported only when a sink that needs them is made.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from pipeline.contract import Event, Stage
    from pipeline.progress import ProgressSink

__all__ = ["RichProgress", "add_output_options", "choose_progress", "describe", "is_human"]


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--quiet`` (one or the other)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json",
        action="store_true",
        help="JSON lines on stdout even on a terminal (default: only when stdout is not one)",
    )
    group.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output; errors still go to stderr (default: off)",
    )


def is_human(args: argparse.Namespace, stdout: TextIO | None = None) -> bool:
    """Whether progress goes to a person: stdout is a terminal, no ``--json``, no ``--quiet``."""
    stream = stdout or sys.stdout
    return not (args.json or args.quiet) and stream.isatty()


def choose_progress(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> ProgressSink:
    """The sink ``args`` and the terminal ask for (see the module docstring)."""
    from pipeline.progress import JsonLinesProgress, NullProgress

    stream = stdout or sys.stdout
    if args.quiet:
        return NullProgress()
    if is_human(args, stream):
        from rich.console import Console

        return RichProgress(Console(file=stderr or sys.stderr))
    return JsonLinesProgress(stream)


class RichProgress:
    """A :class:`~pipeline.progress.ProgressSink` drawing one progress bar per stage.

    :meth:`close` stops the live display (the ``done`` and ``error`` events close it too).
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = console
        self._bars = Progress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}
        self._live = False

    def emit(self, typed: Event) -> None:
        from pipeline.contract import event_dict

        event = event_dict(typed)
        kind = event["event"]
        if kind == "stage":
            self._stage(event)
        elif kind == "warning":
            self._say(f"warning ({event['stage']}): {event['message']}")
        elif kind == "metrics":
            self._say(
                f"held-out PSNR {float(event['psnr']):.2f} dB, SSIM {float(event['ssim']):.3f} "
                f"({event['views']} views)"
            )
        elif kind == "done":
            self.close()
            for name, path in sorted(event["outputs"].items()):
                self._say(f"  {name}: {path}")
            self._say(f"done in {float(event['duration_s']):.1f} s")
        elif kind == "error":
            self.close()

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        self._bars.update(self._task(stage), completed=pct, detail=describe(fields))

    def close(self) -> None:
        if self._live:
            self._bars.stop()
            self._live = False

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def _task(self, stage: str) -> TaskID:
        if not self._live:
            self._bars.start()
            self._live = True
        if stage not in self._tasks:
            self._tasks[stage] = self._bars.add_task(stage, total=100.0, detail="")
        return self._tasks[stage]

    def _stage(self, event: dict[str, Any]) -> None:
        stage, status = str(event["stage"]), event["status"]
        if status == "started":
            self._task(stage)
        elif status == "completed":
            detail = f"done in {float(event['duration_s']):.1f} s"
            self._bars.update(self._task(stage), completed=100.0, detail=detail)
        else:
            detail = f"skipped: {event.get('reason')}"
            self._bars.update(self._task(stage), completed=100.0, detail=detail)


def describe(fields: dict[str, Any]) -> str:
    """``step 120/1000 · loss 0.0412 · 5,120 Gaussians · ETA 1m 20s`` from progress fields
    (what is missing is left out)."""
    parts = []
    if "step" in fields and "total" in fields:
        parts.append(f"step {fields['step']}/{fields['total']}")
    if isinstance(fields.get("loss"), int | float):
        parts.append(f"loss {fields['loss']:.4f}")
    if isinstance(fields.get("gaussians"), int):
        parts.append(f"{fields['gaussians']:,} Gaussians")
    for key in ("images", "frame", "registered", "phase"):
        if key in fields:
            parts.append(f"{key} {fields[key]}")
    eta = fields.get("eta_s")
    if isinstance(eta, int | float):
        minutes, seconds = divmod(round(eta), 60)
        parts.append(f"ETA {minutes}m {seconds:02d}s" if minutes else f"ETA {seconds}s")
    return " · ".join(parts)
