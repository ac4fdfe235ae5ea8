"""PLY writer layout, and a reader that takes other trainers' files and rejects broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plyfile
import pytest
import torch

from pipeline.errors import PlyFormatError
from pipeline.export.ply import ply_property_names, read_ply, up_comments, write_ply
from tests.pipeline.export.factories import (
    assert_splats_equal,
    inria_columns,
    up_of,
    write_custom_ply,
)
from tests.support.splats import random_splats

STANDARD_62 = (
    ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    + [f"f_rest_{i}" for i in range(45)]
    + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
)


def test_written_file_has_the_standard_layout(tmp_path: Path) -> None:
    splats = random_splats(7)
    path = tmp_path / "splat.ply"
    assert write_ply(path, splats, up=[0.0, 0.0, 2.0]) == 7
    raw = path.read_bytes()
    header = raw[: raw.index(b"end_header\n") + len(b"end_header\n")]
    assert header.startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert b"comment Vertical Axis: z\n" in header
    ply = plyfile.PlyData.read(str(path))
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == STANDARD_62
    assert {p.val_dtype for p in vertex.properties} == {"f4"}
    assert len(raw) == len(header) + 7 * 62 * 4  # 248 bytes per Gaussian, nothing else
    for axis in ("nx", "ny", "nz"):
        assert not vertex[axis].any()


def test_f_rest_is_channel_major(tmp_path: Path) -> None:
    splats = random_splats(3)
    write_ply(tmp_path / "s.ply", splats)
    vertex = plyfile.PlyData.read(str(tmp_path / "s.ply"))["vertex"]
    # Coefficient k (1..15) of channel c is f_rest_{c * 15 + k - 1}.
    for c in range(3):
        for k in (1, 7, 15):
            assert np.array_equal(vertex[f"f_rest_{c * 15 + k - 1}"], splats.sh[:, k, c].numpy())
    assert np.array_equal(vertex["opacity"], splats.logit_opacities.numpy())
    assert np.array_equal(vertex["rot_0"], splats.quats[:, 0].numpy())


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_is_exact(tmp_path: Path, degree: int) -> None:
    splats = random_splats(20, sh_degree=degree)
    write_ply(tmp_path / "s.ply", splats, up=[0.0, -1.0, 0.0])
    back = read_ply(tmp_path / "s.ply")
    assert_splats_equal(back.splats, splats)
    assert np.allclose(up_of(back), [0.0, -1.0, 0.0])
    assert ply_property_names(degree)[-8:] == STANDARD_62[-8:]


def test_non_finite_gaussians_are_dropped(tmp_path: Path) -> None:
    splats = random_splats(10)
    splats.means[1, 0] = float("nan")
    splats.sh[3, 9, 2] = float("inf")
    splats.logit_opacities[5] = -float("inf")
    splats.quats[7, 3] = float("nan")
    assert write_ply(tmp_path / "s.ply", splats) == 6
    kept = torch.tensor([0, 2, 4, 6, 8, 9])
    assert_splats_equal(read_ply(tmp_path / "s.ply").splats, splats.select(kept))


def test_empty_splat_writes_a_valid_empty_file(tmp_path: Path) -> None:
    assert write_ply(tmp_path / "e.ply", random_splats(0)) == 0
    assert len(read_ply(tmp_path / "e.ply").splats) == 0


def test_up_comments_name_the_nearest_axis_and_the_vector() -> None:
    assert up_comments([0.1, -0.9, 0.0])[0] == "Vertical Axis: -y"
    assert up_comments([0.0, 0.0, 3.0]) == ["Vertical Axis: z", "Up Vector: 0 0 1"]
    with pytest.raises(ValueError, match="non-zero"):
        up_comments([0.0, 0.0, 0.0])


# --- other trainers' files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("degree", "normals", "dtype", "text", "byte_order"),
    [
        (3, True, "f4", False, "<"),  # INRIA 3DGS / nerfstudio
        (3, False, "f4", False, "<"),  # gsplat's exporter: no normals
        (0, True, "f4", False, "<"),  # DC only
        (1, False, "f8", False, ">"),  # doubles, big-endian
        (2, True, "f4", True, "="),  # ASCII
    ],
)
def test_reader_accepts_other_trainers_files(
    tmp_path: Path, degree: int, normals: bool, dtype: str, text: bool, byte_order: str
) -> None:
    splats = random_splats(12, sh_degree=degree, seed=degree)
    path = write_custom_ply(
        tmp_path / "foreign.ply", inria_columns(splats, normals), dtype, text, byte_order
    )
    back = read_ply(path)
    assert back.splats.sh_degree == degree
    assert_splats_equal(back.splats, splats, atol=1e-6 if text else 0.0)
    assert back.up is None


def test_reader_ignores_extra_and_reordered_properties(tmp_path: Path) -> None:
    splats = random_splats(5, sh_degree=1)
    columns = inria_columns(splats)
    shuffled = dict(reversed(list(columns.items())))
    shuffled["filter_3D"] = np.ones(5, np.float32)
    shuffled["semantic_id"] = np.arange(5, dtype=np.float32)
    back = read_ply(write_custom_ply(tmp_path / "x.ply", shuffled))
    assert_splats_equal(back.splats, splats)


def test_reader_takes_the_up_vector_from_comments(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(2, sh_degree=0))
    nerfstudio = write_custom_ply(tmp_path / "a.ply", columns, comments=["Vertical Axis: y"])
    assert np.array_equal(up_of(read_ply(nerfstudio)), [0.0, 1.0, 0.0])
    both = ["Vertical Axis: z", "Up Vector: 0.6 0 0.8"]
    b = read_ply(write_custom_ply(tmp_path / "b.ply", columns, comments=both))
    assert np.allclose(up_of(b), [0.6, 0.0, 0.8])
    junk = write_custom_ply(tmp_path / "c.ply", columns, comments=["Up Vector: a b c"])
    assert read_ply(junk).up is None


def test_dc_only_ignores_an_odd_f_rest_count(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(3, sh_degree=1))
    del columns["f_rest_8"]
    path = write_custom_ply(tmp_path / "odd.ply", columns)
    assert read_ply(path, dc_only=True).splats.sh.shape == (3, 1, 3)
    with pytest.raises(PlyFormatError, match=r"found 8 f_rest_\* properties"):
        read_ply(path)


# --- malformed files -----------------------------------------------------------------------


def _valid(tmp_path: Path) -> Path:
    path = tmp_path / "valid.ply"
    write_ply(path, random_splats(4))
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlyFormatError, match=r"PLY file not found: .*nothing\.ply"):
        read_ply(tmp_path / "nothing.ply")


def test_not_a_ply(tmp_path: Path) -> None:
    path = tmp_path / "photo.ply"
    path.write_bytes(b"\xff\xd8\xff\xe0 definitely a jpeg")
    with pytest.raises(PlyFormatError, match=r"photo\.ply: not a PLY file"):
        read_ply(path)


def test_truncated_data(tmp_path: Path) -> None:
    path = _valid(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PlyFormatError, match="malformed or truncated PLY data"):
        read_ply(path)


def test_no_vertex_element(tmp_path: Path) -> None:
    table = np.zeros(3, dtype=[("x", "f4")])
    path = tmp_path / "faces.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(table, "face")]).write(str(path))
    with pytest.raises(PlyFormatError, match=r"no 'vertex' element \(found: face\)"):
        read_ply(path)


def test_missing_required_property(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(3))
    del columns["rot_3"]
    with pytest.raises(PlyFormatError, match="missing required property 'rot_3'"):
        read_ply(write_custom_ply(tmp_path / "m.ply", columns))


def test_integer_property(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(3, sh_degree=0))
    path = write_custom_ply(tmp_path / "i.ply", columns, dtype="i4")
    with pytest.raises(
        PlyFormatError, match="property 'x' has type int32, expected float or double"
    ):
        read_ply(path)


def test_list_property(tmp_path: Path) -> None:
    table = np.empty(2, dtype=[("x", "O")])
    table["x"] = [np.array([1.0], "f4"), np.array([2.0], "f4")]
    path = tmp_path / "list.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(table, "vertex")]).write(str(path))
    with pytest.raises(PlyFormatError, match="property 'x' is a list"):
        read_ply(path)


def test_f_rest_with_a_gap(tmp_path: Path) -> None:
    columns = inria_columns(random_splats(3, sh_degree=1))
    columns["f_rest_9"] = columns.pop("f_rest_4")
    with pytest.raises(PlyFormatError, match="f_rest_4 is missing"):
        read_ply(write_custom_ply(tmp_path / "gap.ply", columns))


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex two\nend_header\n")
    with pytest.raises(PlyFormatError, match=r"bad\.ply: not a valid PLY header"):
        read_ply(path)
