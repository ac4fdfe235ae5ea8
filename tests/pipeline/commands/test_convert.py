"""``python -m pipeline convert``: any 3DGS PLY to ply2splat's bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.cli import main
from pipeline.export.ply import read_ply, write_ply
from pipeline.export.splat_format import encode_splat, read_splat
from tests.pipeline.export.factories import inria_columns, write_custom_ply
from tests.support.splats import random_splats


def test_converts_our_ply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    splats = random_splats(300, seed=1)
    write_ply(tmp_path / "splat.ply", splats)
    assert main(["convert", str(tmp_path / "splat.ply"), str(tmp_path / "out.splat")]) == 0
    assert (tmp_path / "out.splat").read_bytes() == encode_splat(splats).tobytes()
    done = json.loads(capsys.readouterr().out.splitlines()[-1])  # stdout is not a terminal
    assert done["outputs"] == {"out.splat": str(tmp_path / "out.splat")}
    assert done["metrics"] == {"gaussians": 300}


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


FORMATS = [".ply", ".splat", ".sog", ".spz"]


# Per format, how far a decoded value may be from the input (see each format's module):
# f_dc and sigmoid(opacity); f_dc is checked inside the range every format stores (.splat clamps
# 0.5 + C0·f_dc to [0, 1]). SH bands 1–3 are checked per format in the test.
DC_RANGE = 0.5 / 0.2820948
TOLERANCE = {
    ".ply": (1e-6, 1e-6),
    ".splat": (1 / 255 / 0.2820948 + 1e-4, 1 / 255 + 1e-6),
    ".sog": (0.0, 0.5 / 255 + 1e-6),  # f_dc: its nearest codebook entry (below)
    ".spz": (0.5 / (0.15 * 255) + 1e-4, 0.5 / 255 + 1e-6),
}


@pytest.mark.parametrize(("kind", "degree"), [("random", 0), ("random", 2), ("scene", 3)])
@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_every_format_pair(
    tmp_path: Path, source: str, target: str, kind: str, degree: int
) -> None:
    """IN → OUT for every pair: OUT decodes to IN's Gaussians within the quantisation of both
    formats (Gaussians matched by nearest centre, since formats reorder them)."""
    from scipy.spatial import cKDTree

    from pipeline.formats.registry import read_splats, write_splats
    from tests.pipeline.formats.factories import random_arrays, scene_arrays

    make = random_arrays if kind == "random" else scene_arrays
    first = tmp_path / f"in{source}"
    write_splats(first, make(400, sh_degree=degree, seed=degree))
    out = tmp_path / f"out{target}"
    assert main(["convert", str(first), str(out)]) == 0
    src, dst = read_splats(first), read_splats(out)
    assert len(dst) == len(src) == 400
    kept = 0 if ".splat" in (source, target) else degree
    assert dst.sh_degree == kept
    distance, match = cKDTree(src.means).query(dst.means)
    assert distance.max() < 2e-3 * (1 + np.abs(src.means).max())
    assert len(set(match.tolist())) == 400
    dc_tol, alpha_tol = TOLERANCE[target]
    inside = np.abs(src.sh[match, 0]) < DC_RANGE - 0.01
    dc_error = np.abs(dst.sh[:, 0] - src.sh[match, 0])
    if target == ".sog":  # a 256-entry codebook: each value gets its nearest entry
        book = np.unique(dst.sh[:, 0])
        dc_tol = np.abs(src.sh[match, 0][..., None] - book).min(axis=-1) + 1e-5
    assert np.all((dc_error <= dc_tol)[inside])
    alpha = 1 / (1 + np.exp(-src.logit_opacities[match].astype(np.float64)))
    alpha_out = 1 / (1 + np.exp(-dst.logit_opacities.astype(np.float64)))
    assert np.abs(alpha_out - alpha).max() <= alpha_tol
    if kept:
        error, rest = np.abs(dst.sh[:, 1:] - src.sh[match, 1:]), src.sh[match, 1:]
        if target == ".ply":
            assert error.max() <= 1e-6
        elif target == ".spz":  # 4–5 bits per coefficient, inside the stored range [-1, 1)
            assert error[(rest >= -1) & (rest < 1)].max() <= 8.5 / 128 + 1e-6
        else:  # SOG: a palette; independent random coefficients (σ 0.5) barely cluster
            rms = float(np.sqrt((error**2).mean()))
            assert rms <= (0.25 if kind == "random" else 0.05)


def test_a_truncated_sog_input_is_a_one_line_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.formats.registry import write_splats
    from tests.pipeline.formats.factories import random_arrays

    sog = tmp_path / "in.sog"
    write_splats(sog, random_arrays(100, sh_degree=1))
    sog.write_bytes(sog.read_bytes()[:500])
    assert main(["convert", str(sog), str(tmp_path / "out.ply")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {sog}: not a readable SOG zip")
    assert not (tmp_path / "out.ply").exists()


def test_unknown_extension_lists_the_supported_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ply(tmp_path / "s.ply", random_splats(5))
    assert main(["convert", str(tmp_path / "s.ply"), str(tmp_path / "s.xyz")]) == 1
    err = capsys.readouterr().err
    assert "unsupported file type (.xyz)" in err and ".ply, .splat, .sog" in err
    assert not (tmp_path / "s.xyz").exists()


def test_splat_to_ply_says_there_was_no_sh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ply(tmp_path / "s.ply", random_splats(20, sh_degree=3))
    assert main(["convert", str(tmp_path / "s.ply"), str(tmp_path / "s.splat")]) == 0
    assert main(["convert", str(tmp_path / "s.splat"), str(tmp_path / "back.ply")]) == 0
    warning = json.loads(capsys.readouterr().out.splitlines()[-2])
    assert warning["event"] == "warning" and "stores no spherical harmonics" in warning["message"]
    back = read_ply(tmp_path / "back.ply")
    assert back.splats.sh_degree == 0
    # .splat → PLY → .splat gives the same bytes back (bytes decode to mid-step values).
    assert main(["convert", str(tmp_path / "back.ply"), str(tmp_path / "again.splat")]) == 0
    first, again = read_splat(tmp_path / "s.splat"), read_splat(tmp_path / "again.splat")
    assert np.array_equal(first.rgba, again.rgba) and np.array_equal(
        first.positions, again.positions
    )


def test_non_finite_rows_are_refused_for_sog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splats = random_splats(30, sh_degree=1)
    splats.means[4, 0] = float("nan")
    # write_ply would drop the NaN row: write the file column by column.
    path = write_custom_ply(tmp_path / "nan.ply", inria_columns(splats))
    assert main(["convert", str(path), str(tmp_path / "o.sog")]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "1 Gaussians have NaN or infinite parameters" in err
    assert not (tmp_path / "o.sog").exists()


def test_ply_to_splat_imports_neither_torch_nor_plyfile(tmp_path: Path) -> None:
    write_ply(tmp_path / "s.ply", random_splats(10))
    code = (
        "import sys; from pipeline.cli import main; "
        f"main(['convert', {str(tmp_path / 's.ply')!r}, {str(tmp_path / 's.splat')!r}]); "
        "print(sorted(m for m in ('torch', 'plyfile', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parents[3])  # fmt: skip
    assert result.stdout.strip().endswith("[]"), result.stdout
