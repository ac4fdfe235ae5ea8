"""``.splat`` records: hand-computed bytes, the reference's edge cases, ply2splat byte equality."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.export.ply import read_ply, write_ply
from pipeline.export.splat_format import (
    SPLAT_RECORD,
    c_expf,
    encode_splat,
    read_splat,
    write_splat,
)
from pipeline.splats import Splats
from tests.pipeline.export.factories import inria_columns, write_custom_ply
from tests.support.splats import random_splats

C0 = 0.28209479177387814


def _splats(rows: Sequence[Mapping[str, object]]) -> Splats:
    """Splats from per-Gaussian dicts with keys pos, log_scale, dc, opacity, quat."""

    def col(key: str) -> torch.Tensor:
        return torch.tensor([r[key] for r in rows], dtype=torch.float32)

    return Splats(col("pos"), col("quat"), col("log_scale"), col("opacity"),
                  col("dc").reshape(-1, 1, 3))  # fmt: skip


def _record(pos: tuple[float, ...], scale: tuple[float, ...], rgba: tuple[int, ...],
            rot: tuple[int, ...]) -> bytes:  # fmt: skip
    return struct.pack("<3f3f4B4B", *pos, *scale, *rgba, *rot)


def test_record_layout_is_32_bytes() -> None:
    assert SPLAT_RECORD.itemsize == 32


def test_hand_computed_record() -> None:
    gaussian = {"pos": [1.5, -2.0, 0.25], "log_scale": [0.0, 0.0, 0.0], "dc": [0.0, 1.0, -1.0],
                "opacity": 0.0, "quat": [1.0, 0.0, 0.0, 0.0]}  # fmt: skip
    # RGB: 0.5 → 127.5 → 127; 0.5 + C0 → 199.43 → 199; 0.5 - C0 → 55.57 → 55 (truncation).
    # A: sigmoid(0) = 0.5 → 127. Quaternion (1, 0, 0, 0) → (255, 128, 128, 128). Scale e^0 = 1.
    expected = _record(
        (1.5, -2.0, 0.25), (1.0, 1.0, 1.0), (127, 199, 55, 127), (255, 128, 128, 128)
    )
    assert int((0.5 + C0) * 255) == 199 and int((0.5 - C0) * 255) == 55
    assert encode_splat(_splats([gaussian])).tobytes() == expected


@pytest.mark.parametrize(
    ("opacity", "alpha"), [(0.0, 127), (100.0, 255), (-100.0, 0), (math.log(3.0), 191)]
)
def test_alpha_edge_cases(opacity: float, alpha: int) -> None:
    # sigmoid(ln 3) = 0.75 → 191.25 → 191.
    g = {"pos": [0, 0, 0], "log_scale": [0, 0, 0], "dc": [0, 0, 0], "opacity": opacity,
         "quat": [1, 0, 0, 0]}  # fmt: skip
    assert encode_splat(_splats([g]))["rgba"][0, 3] == alpha


@pytest.mark.parametrize(
    ("quat", "encoded"),
    [
        ([1.0, 0.0, 0.0, 0.0], (255, 128, 128, 128)),  # w = 1 → 256, clamped to 255
        ([0.0, 0.0, 0.0, 0.0], (255, 128, 128, 128)),  # zero length → identity
        ([2.0, 0.0, 0.0, 0.0], (255, 128, 128, 128)),  # normalised first
        ([0.0, 0.0, 0.0, -3.0], (128, 128, 128, 0)),
        ([0.5, 0.5, 0.5, 0.5], (192, 192, 192, 192)),
        ([0.5, -0.5, -0.5, 0.5], (192, 64, 64, 192)),
    ],
)
def test_quaternion_bytes(quat: list[float], encoded: tuple[int, ...]) -> None:
    g = {"pos": [0, 0, 0], "log_scale": [0, 0, 0], "dc": [0, 0, 0], "opacity": 0.0, "quat": quat}
    assert tuple(encode_splat(_splats([g]))["rotation"][0]) == encoded


def test_colour_clamps_and_scales_exponentiate() -> None:
    g = {"pos": [0, 0, 0], "log_scale": [-1.0, 0.5, -30.0], "dc": [10.0, -10.0, 1.0],
         "opacity": 0.0, "quat": [1, 0, 0, 0]}  # fmt: skip
    record = encode_splat(_splats([g]))[0]
    assert tuple(record["rgba"][:3]) == (255, 0, 199)
    expected = [np.float32(math.exp(v)) for v in (-1.0, 0.5, -30.0)]
    assert np.array_equal(record["scale"], expected)


def test_c_expf_agrees_with_correctly_rounded_exp_almost_everywhere() -> None:
    x = np.random.default_rng(0).uniform(-80, 80, 100_000).astype(np.float32)
    ours = c_expf(x)
    correctly_rounded = np.exp(x.astype(np.float64)).astype(np.float32)
    differs = np.count_nonzero(ours != correctly_rounded)
    assert differs < 1000  # expf is not always correctly rounded, but never off by more
    assert np.all(np.abs(ours.view(np.int32) - correctly_rounded.view(np.int32)) <= 1)


def test_sorted_by_volume_times_alpha_descending() -> None:
    rows = [
        {"pos": [0, 0, 0], "log_scale": [-2, -2, -2], "dc": [0, 0, 0], "opacity": 5.0,
         "quat": [1, 0, 0, 0]},  # volume e^-6, alpha ≈ 1: middle
        {"pos": [1, 0, 0], "log_scale": [0, 0, 0], "dc": [0, 0, 0], "opacity": 0.0,
         "quat": [1, 0, 0, 0]},  # volume 1, alpha 0.5: first
        {"pos": [2, 0, 0], "log_scale": [-3, -3, -3], "dc": [0, 0, 0], "opacity": 5.0,
         "quat": [1, 0, 0, 0]},  # volume e^-9: last
    ]  # fmt: skip
    assert encode_splat(_splats(rows))["position"][:, 0].tolist() == [1.0, 0.0, 2.0]
    assert encode_splat(_splats(rows), sort=False)["position"][:, 0].tolist() == [0.0, 1.0, 2.0]


def test_ties_are_broken_by_x_then_y_then_z() -> None:
    positions = [[1, 0, 0], [0, 5, 0], [0, 2, 9], [0, 2, -1], [-0.5, 7, 7]]
    rows = [{"pos": p, "log_scale": [-1, -1, -1], "dc": [0, 0, 0], "opacity": 1.0,
             "quat": [1, 0, 0, 0]} for p in positions]  # fmt: skip
    out = encode_splat(_splats(rows))["position"].tolist()
    assert out == [[-0.5, 7, 7], [0, 2, -1], [0, 2, 9], [0, 5, 0], [1, 0, 0]]


def test_write_and_read_back(tmp_path: Path) -> None:
    splats = random_splats(100)
    path = tmp_path / "s.splat"
    assert write_splat(path, splats) == 100
    assert path.stat().st_size == 3200
    back = read_splat(path)
    assert sorted(map(tuple, back.positions.tolist())) == sorted(
        map(tuple, splats.means.numpy().tolist())
    )
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="not a multiple of 32"):
        read_splat(path)


def _edge_case_splats(n: int, seed: int, non_finite: bool = True) -> Splats:
    splats = random_splats(n, seed=seed)
    splats.logit_opacities[:10] = 0.0
    splats.logit_opacities[10:20] = 100.0
    splats.logit_opacities[20:30] = -100.0
    splats.quats[30:40] = 0.0
    splats.quats[40:50] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    splats.log_scales[50:60] = 0.0
    splats.log_scales[60:70] = -100.0  # volume underflows to 0: keys tie at -0.0
    splats.means[70:80] = splats.means[60:70]  # and some of those share positions
    splats.means[80:90, 0] = splats.means[90:100, 0]  # equal x, so y decides
    splats.sh[100:110, 0] = 1e6
    if not non_finite:
        return splats
    nan, inf = float("nan"), float("inf")
    splats.sh[110, 0, 0], splats.logit_opacities[111], splats.log_scales[112, 1] = nan, nan, nan
    splats.quats[113, 2], splats.log_scales[114, 0], splats.logit_opacities[114] = nan, inf, -inf
    splats.log_scales[115, 0], splats.quats[116, 0], splats.means[117, 1] = 200.0, inf, -inf
    return splats


@pytest.mark.parametrize("text", [False, True])
def test_byte_identical_to_ply2splat(tmp_path: Path, text: bool) -> None:
    """Conformance: same PLY in, same bytes out as ply2splat.convert(..., sort=True).

    Binary input includes NaN and infinite parameters; ply2splat cannot parse those in ASCII.
    """
    ply2splat = pytest.importorskip("ply2splat")
    splats = _edge_case_splats(3000 if not text else 300, seed=int(text), non_finite=not text)
    path = write_custom_ply(tmp_path / "in.ply", inria_columns(splats), text=text)
    ply2splat.convert(str(path), str(tmp_path / "ref.splat"))
    write_splat(tmp_path / "ours.splat", read_ply(path, dc_only=True).splats)
    assert (tmp_path / "ours.splat").read_bytes() == (tmp_path / "ref.splat").read_bytes()


def test_byte_identical_to_ply2splat_on_our_own_export(tmp_path: Path) -> None:
    ply2splat = pytest.importorskip("ply2splat")
    splats = random_splats(20_000, seed=9)
    write_ply(tmp_path / "splat_rot.ply", splats)
    ply2splat.convert(str(tmp_path / "splat_rot.ply"), str(tmp_path / "ref.splat"))
    write_splat(tmp_path / "ours.splat", splats)
    assert (tmp_path / "ours.splat").read_bytes() == (tmp_path / "ref.splat").read_bytes()


def test_inputs_are_not_modified() -> None:
    splats = random_splats(50, sh_degree=0)
    before = [t.clone() for t in splats.tensors()]
    encode_splat(splats)
    assert all(torch.equal(a, b) for a, b in zip(before, splats.tensors(), strict=True))
