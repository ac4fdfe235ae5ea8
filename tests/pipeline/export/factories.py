"""Splats and PLY files for export and preview tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plyfile
import torch
from numpy.typing import NDArray

from pipeline.export.ply import PlySplats
from pipeline.splats import Splats


def blob_splats(
    centres: Sequence[Sequence[float]], colours: Sequence[Sequence[float]], scale: float = 0.15
) -> Splats:
    """Opaque round Gaussians of DC colour ``colours`` (RGB in [0, 1]) at ``centres``."""
    n = len(centres)
    rgb = torch.tensor(colours, dtype=torch.float32)
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = (rgb - 0.5) / 0.28209479177387814
    return Splats(
        means=torch.tensor(centres, dtype=torch.float32),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        log_scales=torch.full((n, 3), float(np.log(scale))),
        logit_opacities=torch.full((n,), 4.0),
        sh=sh,
    )


def write_custom_ply(
    path: Path,
    columns: dict[str, np.ndarray],
    dtype: str = "f4",
    text: bool = False,
    byte_order: str = "<",
    comments: Sequence[str] = (),
) -> Path:
    """A PLY with exactly ``columns`` (name → ``[N]`` values), in the given order and type."""
    n = len(next(iter(columns.values())))
    table = np.empty(n, dtype=[(name, dtype) for name in columns])
    for name, values in columns.items():
        table[name] = values
    element = plyfile.PlyElement.describe(table, "vertex")
    plyfile.PlyData([element], text=text, byte_order=byte_order, comments=list(comments)).write(
        str(path)
    )
    return path


def inria_columns(splats: Splats, normals: bool = True) -> dict[str, np.ndarray]:
    """The columns another trainer (INRIA 3DGS, gsplat's exporter) would write for ``splats``."""
    n, k = len(splats), splats.sh.shape[1]
    cols: dict[str, np.ndarray] = {}
    for i, axis in enumerate("xyz"):
        cols[axis] = splats.means[:, i].numpy()
    if normals:
        for axis in ("nx", "ny", "nz"):
            cols[axis] = np.zeros(n, np.float32)
    for c in range(3):
        cols[f"f_dc_{c}"] = splats.sh[:, 0, c].numpy()
    rest = splats.sh[:, 1:, :].transpose(1, 2).reshape(n, -1).numpy()
    for j in range(3 * (k - 1)):
        cols[f"f_rest_{j}"] = rest[:, j]
    cols["opacity"] = splats.logit_opacities.numpy()
    for i in range(3):
        cols[f"scale_{i}"] = splats.log_scales[:, i].numpy()
    for i in range(4):
        cols[f"rot_{i}"] = splats.quats[:, i].numpy()
    return cols


def assert_splats_equal(a: Splats, b: Splats, atol: float = 0.0) -> None:
    assert len(a) == len(b)
    for name, x, y in zip(
        ("means", "quats", "log_scales", "logit_opacities", "sh"), a.tensors(), b.tensors(),
        strict=True,
    ):  # fmt: skip
        assert x.shape == y.shape, name
        assert torch.allclose(x.double(), y.double(), atol=atol, rtol=0), name


def up_of(ply: PlySplats) -> NDArray[np.float64]:
    """The up vector the PLY's header records; fails the test when it records none."""
    assert ply.up is not None, "the PLY header records no up vector"
    return ply.up
