"""How the numba kernels share the CPU with torch.

- Threading layer: numba's own ``workqueue`` (unless ``NUMBA_THREADING_LAYER`` says otherwise).
  Its OpenMP layer loads GNU OpenMP next to torch's copy, and its first launch resets torch's
  thread count (``torch.set_num_threads(1)`` silently became 2 here); GNU OpenMP is also not
  fork-safe, while workqueue is, and workqueue threads sleep between kernels instead of
  spinning against torch's.
- Thread count: every launch uses ``torch.get_num_threads()`` threads (capped by numba's pool),
  so ``torch.set_num_threads(1)`` makes the whole renderer single-threaded.
- Workqueue kernels must not be launched from two Python threads at once, so launches hold
  :data:`KERNEL_LOCK`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import torch

__all__ = ["KERNEL_LOCK", "TILE_CHUNK", "kernel_threads", "sync_numba_threads"]

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]

KERNEL_LOCK = threading.RLock()
# Tiles per work item handed to a thread by the compositing kernels: small, so that a few heavy
# tiles do not leave one core idle while the other finishes a static half of the image. Loops
# over Gaussians (cheap, even work) keep numba's default of one equal share per thread.
TILE_CHUNK = 4


def sync_numba_threads() -> None:
    """Use as many numba threads as torch uses (at most numba's pool size)."""
    pool: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    wanted = max(1, min(torch.get_num_threads(), pool))
    if numba.get_num_threads() != wanted:
        numba.set_num_threads(wanted)


@contextmanager
def kernel_threads(chunk: int = 0) -> Iterator[None]:
    """Context for launching parallel kernels: the lock and torch's thread count.

    Args:
        chunk: iterations per work item (``prange`` chunk size); 0 is numba's default.
    """
    with KERNEL_LOCK:
        sync_numba_threads()
        with numba.parallel_chunksize(chunk):
            yield
