"""The splatter runner: input resolution, workspace, pipeline child, uploads, progress.

Public entry point: :func:`run_splatter_job` (the lease engine's handler and the push door's
worker both call it).
"""

from app.runner.errors import JobCancelledError, SplatterJobError
from app.runner.job import run_splatter_job
from app.runner.workspace import cleanup_tasks_root

__all__ = [
    "JobCancelledError",
    "SplatterJobError",
    "cleanup_tasks_root",
    "run_splatter_job",
]
