"""The worker supervisor: owns the GPU slot and every pipeline child the node starts.

One slot (``asyncio.Lock``): a job holds it from its first download to its last upload, so the
push door and the lease engine never run two jobs on one GPU. The supervisor builds the child's
command line and environment from the settings (the child imports the same ``pipeline`` code as
this process: ``PYTHONPATH`` starts with :data:`app.PROJECT_ROOT`), tracks running children and
stops them all at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
from pathlib import Path

from app import PROJECT_ROOT
from app.settings import Settings
from app.worker.environment import pipeline_env
from app.worker.process import ChildOutcome, EventCallback, run_child

__all__ = ["WorkerSupervisor"]

log = logging.getLogger(__name__)


class WorkerSupervisor:
    """Starts pipeline children for jobs and can stop them all."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.slot = asyncio.Lock()
        self._running: dict[Path, asyncio.Event] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._stopping = False

    @property
    def busy(self) -> bool:
        """True while a job holds the slot."""
        return self.slot.locked()

    @property
    def stopping(self) -> bool:
        """True once the node began shutting down: a job stopped now is kept for a resume."""
        return self._stopping

    def begin_shutdown(self) -> None:
        """Says the node is shutting down (before the doors drain or cancel their jobs)."""
        self._stopping = True

    @property
    def running_children(self) -> int:
        return len(self._running)

    def command_for(self, job_root: Path, capture: Path | None = None) -> list[str]:
        """The child's argv: ``<PIPELINE_COMMAND> run --job-root DIR [options]``, or with a
        ``capture`` (the watch door's) ``<PIPELINE_COMMAND> train CAPTURE --out DIR [options]``
        (``train`` detects the capture's layout; it has no ``--trainer``)."""
        s = self._settings
        if capture is None:
            argv = [*s.pipeline_argv, "run", "--job-root", str(job_root)]
        else:
            argv = [*s.pipeline_argv, "train", str(capture), "--out", str(job_root)]
        argv += ["--backend", s.splatter_backend]
        if s.splatter_trainer != "builtin" and capture is None:  # the default stays implicit
            argv += ["--trainer", s.splatter_trainer]
        if s.splatter_iterations is not None:
            argv += ["--steps", str(s.splatter_iterations)]
        if s.splatter_threads is not None:
            argv += ["--threads", str(s.splatter_threads)]
        if s.splatter_snapshot_secs is not None:
            argv += ["--snapshot-every", f"{s.splatter_snapshot_secs:g}"]
        if not s.splatter_convert_to_sog:
            argv.append("--no-sog")
        if not s.splatter_previews:
            argv.append("--no-preview")
        else:
            if s.splatter_preview_size is not None:
                argv += ["--preview-size", s.splatter_preview_size]
            if s.splatter_preview_fps is not None:
                argv += ["--preview-fps", f"{s.splatter_preview_fps:g}"]
        return argv

    def describe_command(self, job_root: Path, capture: Path | None = None) -> str:
        """The command as one shell-quoted string (the ``script`` field of the progress)."""
        return shlex.join(self.command_for(job_root, capture))

    def check_command(self) -> str | None:
        """Why the pipeline command cannot start, or ``None`` when its program exists."""
        program = self._settings.pipeline_argv[0]
        if os.sep in program:
            ok = Path(program).is_file() and os.access(program, os.X_OK)
        else:
            ok = shutil.which(program) is not None
        return None if ok else f"pipeline command not found or not executable: {program}"

    async def run_pipeline(
        self,
        job_root: Path,
        cancel: asyncio.Event,
        on_event: EventCallback,
        capture: Path | None = None,
    ) -> ChildOutcome:
        """Runs the pipeline child on ``job_root`` (``train capture --out job_root`` with a
        ``capture``) until it exits or ``cancel`` is set.

        Raises:
            RuntimeError: the supervisor is shutting down.
            OSError: the pipeline command could not be started.
        """
        if self._closed:
            raise RuntimeError("worker supervisor is shutting down")
        self._running[job_root] = cancel
        self._idle.clear()
        try:
            outcome = await run_child(
                self.command_for(job_root, capture),
                env=pipeline_env(PYTHONUNBUFFERED="1"),
                cwd=PROJECT_ROOT,
                on_event=on_event,
                cancel=cancel,
                grace_s=self._settings.cancel_grace_secs,
                nice=self._settings.pipeline_nice,
            )
        finally:
            self._running.pop(job_root, None)
            if not self._running:
                self._idle.set()
        log.info(
            "pipeline child ended",
            extra={
                "job_root": str(job_root),
                "status": outcome.status_text,
                "signal": outcome.signal_name,
                "cancelled": outcome.cancelled,
                "duration_ms": outcome.duration_ms,
            },
        )
        return outcome

    async def shutdown(self) -> None:
        """Refuses new children and stops the running ones (SIGTERM, then SIGKILL)."""
        self._closed = self._stopping = True
        for cancel in list(self._running.values()):
            cancel.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self._settings.cancel_grace_secs + 5.0)
