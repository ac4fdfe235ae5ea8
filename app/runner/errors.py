"""Runner errors. ``str(error)`` is the top-level message: the fail reason is
``runner failed: <str(error)>`` (protocol §1.9), so messages reproduce the reference's strings."""

from __future__ import annotations

from domain_client.engine import RunnerError

__all__ = ["JobCancelledError", "RequiredUploadError", "SplatterJobError"]


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
