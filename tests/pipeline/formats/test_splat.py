"""The numpy .splat encoder: exact expf, decoding .splat files, no heavy imports."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.formats.splat import c_expf, read_arrays, read_splat, write_splat_arrays
from tests.pipeline.formats.factories import scene_arrays


def _libm_expf() -> Any:
    name = ctypes.util.find_library("m")
    if name is None:
        pytest.skip("no C math library to compare with")
    expf = ctypes.CDLL(name).expf
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


def test_c_expf_is_the_c_librarys_expf_bit_for_bit() -> None:
    """Reference: the C library's expf called once per value (slow), on fresh random inputs
    over the whole range (overflow, underflow, subnormal results) and the special values."""
    expf = _libm_expf()
    rng = np.random.default_rng(2026)
    x = np.concatenate([
        rng.uniform(-110, 95, 100_000), rng.uniform(-12, 4, 200_000), rng.normal(0, 1e-3, 20_000),
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, 88.73, -103.9, -104.0, -87.33],
    ]).astype(np.float32)  # fmt: skip
    ours = c_expf(x)
    reference = np.array([expf(float(v)) for v in x], dtype=np.float32)
    assert np.array_equal(ours.view(np.int32), reference.view(np.int32))


def test_splat_file_decodes_to_values_that_encode_back(tmp_path: Path) -> None:
    """.splat → Gaussians → .splat: same positions and colour/opacity bytes (bytes decode to
    mid-step values), scales within float32 rounding of exp(log s), rotation within a step."""
    splats = scene_arrays(2000, sh_degree=0, seed=8)
    write_splat_arrays(tmp_path / "a.splat", splats)
    decoded = read_arrays(tmp_path / "a.splat")
    assert decoded.sh_degree == 0 and len(decoded) == 2000
    first = read_splat(tmp_path / "a.splat")
    write_splat_arrays(tmp_path / "b.splat", decoded)
    again = read_splat(tmp_path / "b.splat")
    # exp(log s) may move a scale by an ULP, and so the order: match records by position.
    a = np.lexsort(first.positions.T)
    b = np.lexsort(again.positions.T)
    assert np.array_equal(first.positions[a], again.positions[b])
    assert np.array_equal(first.rgba[a], again.rgba[b])
    assert np.allclose(first.scales[a], again.scales[b], rtol=1e-6, atol=0)
    assert np.abs(first.rotation[a].astype(int) - again.rotation[b]).max() <= 1


def test_importing_the_encoder_loads_neither_numba_nor_torch() -> None:
    code = (
        "import sys, pipeline.formats.splat, pipeline.formats.ply, pipeline.formats.registry; "
        "print(sorted(m for m in ('numba', 'torch', 'plyfile', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[3]).stdout  # fmt: skip
    assert out.strip() == "[]"
