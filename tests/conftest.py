"""Suite-wide test settings."""

from __future__ import annotations

import os

# As in pipeline/__main__.py: sleeping OpenMP workers, set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

# Parallel pytest workers (and the node's child processes) must not oversubscribe 2 cores.
torch.set_num_threads(int(os.environ.get("SPLATTER_TEST_THREADS", "2")))

#: The emulator fixtures (``emulator``, ``start_emulator``), shared by the node and emulator tests.
pytest_plugins = ["tests.support.emulator"]
