"""The splatter node: FastAPI service, job store, lease engine, worker supervisor, runner."""

from pathlib import Path

__all__ = ["CAPABILITY", "PROJECT_ROOT", "__version__"]

__version__ = "0.1.0"

#: The one capability this node serves (protocol §3.2).
CAPABILITY = "/splatter/colmap/v1"

#: The directory the running ``app`` package was imported from: the pipeline child gets it on
#: ``PYTHONPATH`` so that parent and child always run the same code.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
