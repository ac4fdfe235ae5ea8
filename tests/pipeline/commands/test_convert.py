"""``python -m pipeline convert``: any 3DGS PLY to ply2splat's bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.cli import main
from pipeline.export.ply import write_ply
from pipeline.export.splat_format import encode_splat, read_splat
from tests.pipeline.export.factories import inria_columns, write_custom_ply
from tests.support.splats import random_splats


def test_converts_our_ply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    splats = random_splats(300, seed=1)
    write_ply(tmp_path / "splat.ply", splats)
    assert main(["convert", str(tmp_path / "splat.ply"), str(tmp_path / "out.splat")]) == 0
    assert (tmp_path / "out.splat").read_bytes() == encode_splat(splats).tobytes()
    assert f"wrote 300 Gaussians to {tmp_path / 'out.splat'}" in capsys.readouterr().out


def test_rotate_reproduces_the_reference_rotate_then_convert(tmp_path: Path) -> None:
    ply2splat = pytest.importorskip("ply2splat")
    splats = random_splats(500, sh_degree=1, seed=2)
    write_ply(tmp_path / "splat.ply", splats)
    # rotate_ply.py by hand: x' = -z, y' = -x, z' = y; q' = q_R * q via SciPy; SH untouched.
    columns = inria_columns(splats)
    x, y, z = columns["x"].copy(), columns["y"].copy(), columns["z"].copy()
    columns["x"], columns["y"], columns["z"] = -z, -x, y
    q = np.stack([columns[f"rot_{i}"] for i in range(4)], axis=1).astype(np.float64)
    turn = Rotation.from_matrix([[0, 0, -1], [-1, 0, 0], [0, 1, 0]])
    xyzw = (turn * Rotation.from_quat(q[:, [1, 2, 3, 0]])).as_quat()
    for i, k in enumerate([3, 0, 1, 2]):
        columns[f"rot_{i}"] = xyzw[:, k]
    write_custom_ply(tmp_path / "splat_rot.ply", columns)
    ply2splat.convert(str(tmp_path / "splat_rot.ply"), str(tmp_path / "reference.splat"))

    args = ["convert", str(tmp_path / "splat.ply"), str(tmp_path / "ours.splat"), "--rotate"]
    assert main(args) == 0
    ours, ref = read_splat(tmp_path / "ours.splat"), read_splat(tmp_path / "reference.splat")
    assert np.array_equal(ours.positions, ref.positions)
    assert np.array_equal(ours.scales, ref.scales) and np.array_equal(ours.rgba, ref.rgba)
    # Quaternion bytes may differ by the sign of q (same rotation) and float32 rounding.
    decoded = [(r.rotation.astype(float) - 128) / 128 for r in (ours, ref)]
    same_sign = np.abs(decoded[0] - decoded[1]).max(axis=1)
    flipped = np.abs(decoded[0] + decoded[1]).max(axis=1)
    assert np.minimum(same_sign, flipped).max() <= 2 / 128


def test_converts_a_foreign_ascii_ply(tmp_path: Path) -> None:
    splats = random_splats(20, sh_degree=0, seed=3)
    path = write_custom_ply(tmp_path / "other.ply", inria_columns(splats, normals=False), text=True)
    assert main(["convert", str(path), str(tmp_path / "o.splat")]) == 0
    assert (tmp_path / "o.splat").stat().st_size == 20 * 32


def test_bad_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    columns = inria_columns(random_splats(3))
    del columns["opacity"]
    path = write_custom_ply(tmp_path / "broken.ply", columns)
    assert main(["convert", str(path), str(tmp_path / "o.splat")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing required property 'opacity'" in err
    assert not (tmp_path / "o.splat").exists()


def test_runs_as_a_module(tmp_path: Path) -> None:
    write_ply(tmp_path / "s.ply", random_splats(10))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "convert", str(tmp_path / "s.ply"),
         str(tmp_path / "s.splat")],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[3],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.splat").stat().st_size == 320
