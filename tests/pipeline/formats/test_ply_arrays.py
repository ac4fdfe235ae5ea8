"""The numpy PLY reader against plyfile's (pipeline.export.ply), and the numpy PLY writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PlyFormatError
from pipeline.export.ply import read_ply, write_ply
from pipeline.formats.arrays import SplatArrays
from pipeline.formats.ply import read_ply_arrays, write_ply_arrays
from tests.pipeline.export.factories import inria_columns, write_custom_ply
from tests.support.splats import random_splats


def _assert_same(a: SplatArrays, b: SplatArrays) -> None:
    for x, y in zip(a.columns(), b.columns(), strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype == np.float32
        assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize(("dtype", "order"), [("f4", "<"), ("f8", "<"), ("f4", ">")])
def test_same_gaussians_as_plyfile(tmp_path: Path, sh_degree: int, dtype: str, order: str) -> None:
    splats = random_splats(200, sh_degree=sh_degree, seed=sh_degree)
    columns = inria_columns(splats)
    columns = {"extra": np.arange(200.0), **dict(reversed(list(columns.items())))}
    path = write_custom_ply(tmp_path / "in.ply", columns, dtype=dtype, byte_order=order,
                            comments=["made by a test"])  # fmt: skip
    ours = read_ply_arrays(path)
    _assert_same(ours.splats, SplatArrays.from_splats(read_ply(path).splats))
    assert ours.comments == ["made by a test"]
    assert read_ply_arrays(path, dc_only=True).splats.sh_degree == 0


def test_ascii_falls_back_to_plyfile(tmp_path: Path) -> None:
    splats = random_splats(30, sh_degree=1, seed=4)
    path = write_custom_ply(tmp_path / "in.ply", inria_columns(splats), text=True)
    _assert_same(read_ply_arrays(path).splats, SplatArrays.from_splats(read_ply(path).splats))


def test_writer_matches_the_export_writer_byte_for_byte(tmp_path: Path) -> None:
    splats = random_splats(300, sh_degree=2, seed=5)
    write_ply(tmp_path / "export.ply", splats)
    write_ply_arrays(tmp_path / "formats.ply", SplatArrays.from_splats(splats))
    assert (tmp_path / "formats.ply").read_bytes() == (tmp_path / "export.ply").read_bytes()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("opacity"), "missing required property 'opacity'"),
        (lambda c: c.pop("f_rest_3"), "found 8 f_rest_"),
    ],
)
def test_bad_properties_are_named(tmp_path: Path, edit: object, message: str) -> None:
    columns = inria_columns(random_splats(5, sh_degree=1))
    edit(columns)  # type: ignore[operator]
    path = write_custom_ply(tmp_path / "bad.ply", columns)
    with pytest.raises(PlyFormatError, match=message) as caught:
        read_ply_arrays(path)
    assert str(path) in str(caught.value)


def test_integer_position_is_rejected(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(5, sh_degree=0))
    path = write_custom_ply(tmp_path / "bad.ply", columns, dtype="i4")
    with pytest.raises(PlyFormatError, match="property 'x' has type int32"):
        read_ply_arrays(path)


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "s.ply"
    write_ply(path, random_splats(50))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(PlyFormatError, match="truncated"):
        read_ply_arrays(path)
    (tmp_path / "x.ply").write_bytes(b"not a ply")
    with pytest.raises(PlyFormatError, match="not a PLY file"):
        read_ply_arrays(tmp_path / "x.ply")
    with pytest.raises(PlyFormatError, match="not found"):
        read_ply_arrays(tmp_path / "missing.ply")
    (tmp_path / "h.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement face 3\n")
    with pytest.raises(PlyFormatError, match="end_header"):
        read_ply_arrays(tmp_path / "h.ply")
