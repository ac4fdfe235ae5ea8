"""Graceful stop of a pipeline run: SIGTERM finishes the training step in hand, writes a
checkpoint and exits 143, so that a rerun (``resume``) loses nothing.

Outside training a SIGTERM stops the run at once (:class:`StopRequested` unwinds through the
``finally`` blocks, which remove partial files; every finished file was written atomically).
Inside :meth:`GracefulStop.deferred` it only sets a flag that the training loop reads after each
step (``should_stop``): the step finishes, a checkpoint is written, then :class:`StopRequested`
is raised with the step it holds. One step takes milliseconds on a GPU and well under a second
in the CPU profile, so the whole stop fits the node's ``CANCEL_GRACE_SECS``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["EXIT_TERMINATED", "GracefulStop", "StopRequested"]

#: Exit code of a run stopped by SIGTERM (128 + 15, as a shell reports it).
EXIT_TERMINATED = 128 + signal.SIGTERM


class StopRequested(BaseException):
    """SIGTERM arrived; the run unwinds and exits :data:`EXIT_TERMINATED`.

    A ``BaseException`` so that no stage's ``except Exception`` swallows it.

    Attributes:
        checkpoint_step: training steps held by the checkpoint written on the way out, or
            ``None`` when the stop came outside training.
    """

    def __init__(self, checkpoint_step: int | None = None) -> None:
        detail = "" if checkpoint_step is None else f" (checkpoint at step {checkpoint_step})"
        super().__init__(f"terminated by SIGTERM{detail}")
        self.checkpoint_step = checkpoint_step


class GracefulStop:
    """The SIGTERM handler of one run and the flag it sets."""

    def __init__(self) -> None:
        self.requested = False
        self._deferring = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: flag the stop; outside :meth:`deferred`, stop at once."""
        self.requested = True
        if self._deferring == 0:
            raise StopRequested

    def should_stop(self) -> bool:
        """What the training loop polls after each step."""
        return self.requested

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Inside, SIGTERM only sets :attr:`requested`; the code polls :meth:`should_stop`."""
        if self.requested:
            raise StopRequested
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1

    @contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        """Installs :meth:`handle` for SIGTERM; restores the previous handler afterwards."""
        previous = signal.signal(signal.SIGTERM, self.handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)
