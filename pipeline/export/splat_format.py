"""``.splat`` files from torch :class:`~pipeline.splats.Splats` (ply2splat's exact bytes).

The format and its arithmetic live in :mod:`pipeline.formats.splat` (numpy only);
this module adapts the trainer's tensors to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.formats.arrays import SplatArrays
from pipeline.formats.splat import (
    SPLAT_RECORD,
    SplatFile,
    c_expf,
    encode_splat_arrays,
    read_splat,
    write_splat_arrays,
)
from pipeline.splats import Splats

__all__ = [
    "SPLAT_RECORD",
    "SplatFile",
    "c_expf",
    "encode_splat",
    "read_splat",
    "write_splat",
]


def encode_splat(splats: Splats, sort: bool = True) -> NDArray[np.void]:
    """The ``.splat`` records ``[N]`` (dtype :data:`SPLAT_RECORD`) of ``splats`` (float32)."""
    return encode_splat_arrays(SplatArrays.from_splats(splats), sort=sort)


def write_splat(path: Path, splats: Splats, sort: bool = True) -> int:
    """Write ``splats`` as a ``.splat`` file (atomically); returns the record count."""
    return write_splat_arrays(path, SplatArrays.from_splats(splats), sort=sort)
