"""Runner errors. ``str(error)`` is the top-level message: the fail reason is
``runner failed: <str(error)>`` (protocol §1.9), so messages reproduce the reference's strings."""

from __future__ import annotations

from domain_client.engine import RunnerError

__all__ = [
    "FOREIGN_SIGTERM",
    "JobCancelledError",
    "PipelineInterruptedError",
    "RequiredUploadError",
    "SplatterJobError",
]


class SplatterJobError(RunnerError):
    """The job failed; the message is the reason's top-level text (e.g. ``materialize cid X``).

    A ``RunnerError``: the lease engine's fail receipt says ``runner failed: <message>``.
    """


class RequiredUploadError(SplatterJobError):
    """The splat could not be uploaded (after the domain client's retries): the job fails, and
    its folder is kept for a resume (:mod:`app.runner.retention`)."""


class JobCancelledError(Exception):
    """The cancel flag was set (DMS cancel, lost lease, DELETE, shutdown): no receipt is sent."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"task cancelled: {stage}")
        self.stage = stage


FOREIGN_SIGTERM = "pipeline stopped by SIGTERM"
"""Why a job folder is kept (and a push or watch job queued again) after a
:class:`PipelineInterruptedError`: the resume marker's reason and ``interrupted_by``."""


class PipelineInterruptedError(JobCancelledError):
    """The pipeline child exited 143 after a SIGTERM the node did not send (its process group or
    its cgroup was signalled, e.g. systemd stopping the unit): an interruption, not a failure.

    Handled like a node shutdown: no receipt is sent, the job ends ``cancelled`` and its folder is
    kept for a resume (the child wrote a checkpoint on its way out). A push job is queued again
    instead, at most twice (``app.jobs.service.SIGTERM_REQUEUES``); a watch job too
    (``WATCH_MAX_ATTEMPTS``).
    """

    def __init__(self, detail: str | None) -> None:
        super().__init__("python execution")
        self.args = (f"task interrupted: pipeline {detail or 'terminated by SIGTERM'}",)
