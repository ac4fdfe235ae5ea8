"""SPZ: round trips within the stated bounds, spz-js's decode of our files, versions, bad files.

Bounds (pipeline/formats/spz.py): positions within 2^-(bits+1); log-scales within 1/32 in
[-10, 5.94]; sigmoid(opacity) within 0.5/255; f_dc within 0.5/(0.15·255) in [-3.33, 3.33];
rotation x, y, z (w ≥ 0) within 0.5/127.5; SH band 1 within 4.5/128, bands 2–3 within 8.5/128
in [-1, 1).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.formats.arrays import SplatArrays
from pipeline.formats.ply import read_ply_arrays
from pipeline.formats.spz import (
    SpzFormatError,
    decode_spz,
    encode_spz,
    fractional_bits,
    read_spz,
    write_spz,
)
from tests.pipeline.formats.factories import random_arrays, scene_arrays
from tests.support.oracles import spz_js_to_ply


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1 / (1 + np.exp(-x.astype(np.float64)))
    return result


def assert_within_spz_bounds(original: SplatArrays, decoded: SplatArrays, bits: int) -> None:
    eps = 1e-6
    assert np.all(np.abs(decoded.means - original.means) <= 2.0 ** -(bits + 1) + eps)
    inside = (original.log_scales >= -10) & (original.log_scales <= 5.9375)
    assert np.all(np.abs(decoded.log_scales - original.log_scales)[inside] <= 1 / 32 + eps)
    alpha_error = np.abs(_sigmoid(decoded.logit_opacities) - _sigmoid(original.logit_opacities))
    assert np.all(alpha_error <= 0.5 / 255 + eps)
    dc, dc_dec = original.sh[:, 0], decoded.sh[:, 0]
    in_range = np.abs(dc) <= 127.5 / (0.15 * 255)
    assert np.all(np.abs(dc_dec - dc)[in_range] <= 0.5 / (0.15 * 255) + eps)
    q = original.quats.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(q[:, :1] < 0, -q, q)
    assert np.all(np.abs(decoded.quats[:, 1:] - q[:, 1:]) <= 0.5 / 127.5 + eps)
    rest, rest_dec = original.sh[:, 1:], decoded.sh[:, 1:]
    ok = (rest >= -1) & (rest < 1)
    bound = np.full(rest.shape, 8.5 / 128)
    bound[:, :3] = 4.5 / 128
    assert np.all((np.abs(rest_dec - rest) <= bound + eps)[ok])


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_random(tmp_path: Path, sh_degree: int) -> None:
    splats = random_arrays(2000, sh_degree=sh_degree, seed=sh_degree)
    assert write_spz(tmp_path / "s.spz", splats) == 2000
    decoded = read_spz(tmp_path / "s.spz")
    assert decoded.sh_degree == sh_degree and len(decoded) == 2000
    assert_within_spz_bounds(splats, decoded, bits=12)


def test_round_trip_real_shaped_far_from_the_origin(tmp_path: Path) -> None:
    splats = scene_arrays(3000, sh_degree=3, seed=4)
    splats.means[:] += np.float32(3000.0)  # beyond 2048: 12 fractional bits would overflow
    bits = fractional_bits(splats.means)
    assert bits == 11
    write_spz(tmp_path / "s.spz", splats)
    assert_within_spz_bounds(splats, read_spz(tmp_path / "s.spz"), bits=bits)


def test_header_and_layout(tmp_path: Path) -> None:
    payload = encode_spz(random_arrays(10, sh_degree=2))
    magic, version, count, degree, bits, flags, _ = struct.unpack_from("<IIIBBBB", payload)
    assert (magic, version, count, degree, bits, flags) == (0x5053474E, 2, 10, 2, 12, 0)
    assert len(payload) == 16 + 10 * (9 + 1 + 3 + 3 + 3 + 8 * 3)


def test_spz_js_decodes_ours_like_our_reader(tmp_path: Path) -> None:
    """Oracle: spz-js (the web loader) decodes our file to our reader's values, within bounds."""
    splats = scene_arrays(3000, sh_degree=3, seed=5)
    write_spz(tmp_path / "ours.spz", splats)
    spz_js_to_ply(tmp_path / "ours.spz", tmp_path / "back.ply")
    theirs = read_ply_arrays(tmp_path / "back.ply").splats
    ours = read_spz(tmp_path / "ours.spz")
    for name in ("means", "quats", "log_scales", "sh"):
        assert np.allclose(getattr(ours, name), getattr(theirs, name), atol=1e-5), name
    assert np.allclose(_sigmoid(ours.logit_opacities), _sigmoid(theirs.logit_opacities), atol=2e-6)
    assert_within_spz_bounds(splats, theirs, bits=12)


def test_reads_version_3_smallest_three_rotations() -> None:
    """A hand-packed v3 record: largest component w, others (x, y, z) = (0.5, -0.5, 0)."""
    header = struct.pack("<IIIBBBB", 0x5053474E, 3, 1, 0, 12, 0, 0)
    mags = [round(0.5 / np.sqrt(0.5) * 511), round(0.5 / np.sqrt(0.5) * 511), 0]
    signs = [0, 1, 0]
    word = 3 << 30  # largest index 3 = w in (x, y, z, w) order
    shift = 0
    for j in (2, 1, 0):  # z is packed first (lowest bits), then y, then x
        word |= (mags[j] | (signs[j] << 9)) << shift
        shift += 10
    body = bytes(9) + bytes([255]) + bytes([128] * 3) + bytes([160] * 3) + struct.pack("<I", word)
    decoded = decode_spz(header + body)
    assert np.allclose(decoded.quats[0], [np.sqrt(0.5), 0.5, -0.5, 0.0], atol=2e-3)


def test_bad_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.spz"
    write_spz(good, random_arrays(50, sh_degree=1))
    payload = gzip.decompress(good.read_bytes())
    cases = {
        "cut.spz": (good.read_bytes()[:40], "not a readable gzip stream"),
        "short.spz": (gzip.compress(payload[:-5]), "truncated or not an SPZ file"),
        "magic.spz": (gzip.compress(b"XXXX" + payload[4:]), "bad magic"),
        "version.spz": (gzip.compress(payload[:4] + struct.pack("<I", 9) + payload[8:]),
                        "SPZ version 9"),
    }  # fmt: skip
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SpzFormatError, match=message) as caught:
            read_spz(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value)


def test_non_finite_and_huge_inputs_are_refused(tmp_path: Path) -> None:
    splats = random_arrays(20, sh_degree=0)
    splats.logit_opacities[3] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        write_spz(tmp_path / "s.spz", splats)
    far = random_arrays(5, sh_degree=0)
    far.means[0, 0] = 1e7
    with pytest.raises(ValueError, match="24-bit"):
        write_spz(tmp_path / "s.spz", far)
    assert list(tmp_path.iterdir()) == []
