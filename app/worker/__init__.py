"""The worker layer: pipeline child processes and the supervisor that owns them."""

from app.worker.process import ChildOutcome, run_child, terminate_group
from app.worker.supervisor import WorkerSupervisor

__all__ = ["ChildOutcome", "WorkerSupervisor", "run_child", "terminate_group"]
