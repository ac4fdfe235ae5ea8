"""Niantic SPZ (what Scaniverse and Spark read): a gzip of a 16-byte header and packed columns.

Layout (little-endian), as Niantic's ``spz`` library and ``spz-js`` write version 2::

    header   magic 0x5053474E ("NGSP"), version u32, count u32, SH degree u8,
             fractional bits u8, flags u8 (1 = antialiased), reserved u8
    N × 9    positions: x, y, z as 24-bit signed fixed point (value · 2^fractional bits)
    N        alpha: sigmoid(opacity) · 255
    N × 3    colour: f_dc · 0.15 · 255 + 127.5
    N × 3    scales: (log-scale + 10) · 16
    N × 3    rotation (v2): x, y, z of the unit quaternion with w ≥ 0, · 127.5 + 127.5
             (v3 instead: 4 bytes, smallest three: 2-bit index of the largest, then three
             9-bit magnitudes with a sign bit each, scaled by 1/√2)
    N × 3K   SH bands 1–3 (K coefficients per channel), coefficient-major, RGB innermost:
             x · 128 + 128, band 1 rounded to multiples of 8 (5 bits), bands 2–3 of 16 (4 bits)

Coordinates are stored as given (no axis change). We write version 2 (what ``spz-js`` and
Spark read) with 12 fractional bits, fewer when a coordinate would overflow 24 bits; we read
versions 1 (float16 positions) to 3.

Quantisation bounds (all but SH for values inside the byte range; outside it, values clamp):

- positions: within ``2^-(bits+1)`` (1.2e-4 with 12 bits);
- log-scales in [-10, 5.94]: within 1/32;  opacity: ``sigmoid`` within 0.5/255;
- ``f_dc`` in [-3.33, 3.33]: within 0.5 / (0.15 · 255) ≈ 0.0131;
- rotation (w ≥ 0): x, y, z within 0.5/127.5 ≈ 0.0039 (w is recomputed);
- SH in [-1, 1): band 1 within 4.5/128 ≈ 0.035, bands 2–3 within 8.5/128 ≈ 0.066.
"""

from __future__ import annotations

import gzip
import itertools
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.formats.arrays import F32, SplatArrays, sh_coefficients

__all__ = ["SpzFormatError", "decode_spz", "encode_spz", "read_spz", "write_spz"]

MAGIC = 0x5053474E
VERSION = 2
COLOR_SCALE = 0.15
_HEADER = struct.Struct("<IIIBBBB")
_MAX_FRACTIONAL_BITS = 12
_LIMIT = (1 << 23) - 1
U8 = NDArray[np.uint8]


class SpzFormatError(InputError):
    """An ``.spz`` that cannot be read: not gzip, a bad header, too short."""


def _round(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half up, like JavaScript's ``Math.round`` (what spz-js uses)."""
    return np.floor(x + 0.5)


def _to_u8(x: NDArray[np.float64]) -> U8:
    return np.clip(_round(x), 0, 255).astype(np.uint8)


def fractional_bits(means: F32) -> int:
    """12, or fewer so that the largest coordinate fits a signed 24-bit integer.

    Raises:
        ValueError: coordinates beyond ±8,388,607 (no fixed-point scale can hold them).
    """
    largest = float(np.abs(means).max()) if means.size else 0.0
    if largest == 0.0:
        return _MAX_FRACTIONAL_BITS
    bits = min(_MAX_FRACTIONAL_BITS, math.floor(math.log2(_LIMIT / largest)))
    if bits < 0:
        raise ValueError(f"coordinates up to {largest:g} do not fit SPZ's 24-bit positions")
    return bits


def encode_spz(splats: SplatArrays, antialiased: bool = False) -> bytes:
    """The uncompressed SPZ version 2 payload (header + columns) of finite ``splats``."""
    bad = splats.non_finite_rows()
    if bad.size:
        first = int(bad[0])
        raise ValueError(f"{bad.size} Gaussians have NaN or infinite parameters (row {first})")
    n, degree = len(splats), splats.sh_degree
    bits = fractional_bits(splats.means)
    fixed = _round(splats.means.astype(np.float64) * (1 << bits)).astype(np.int32)
    positions = fixed.reshape(n, 3, 1).view(np.uint8)[..., :3].reshape(-1)  # low 3 bytes (LE)
    alpha = 1.0 / (1.0 + np.exp(-splats.logit_opacities.astype(np.float64)))
    colors = splats.sh[:, 0, :].astype(np.float64) * (COLOR_SCALE * 255.0) + 127.5
    scales = (splats.log_scales.astype(np.float64) + 10.0) * 16.0
    header = _HEADER.pack(MAGIC, VERSION, n, degree, bits, int(antialiased), 0)
    parts = [header, positions.tobytes(), _to_u8(alpha * 255.0).tobytes(),
             _to_u8(colors).tobytes(), _to_u8(scales).tobytes(),
             _encode_rotations(splats.quats).tobytes(), _encode_sh(splats).tobytes()]  # fmt: skip
    return b"".join(parts)


def _encode_rotations(quats: F32) -> U8:
    q = quats.astype(np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), [1.0, 0.0, 0.0, 0.0])
    q = np.where(q[:, :1] < 0, -q, q)  # w ≥ 0: the same rotation
    return _to_u8(q[:, 1:] * 127.5 + 127.5)


def _encode_sh(splats: SplatArrays) -> U8:
    n = len(splats)
    rest = splats.sh[:, 1:, :].reshape(n, -1).astype(np.float64)  # coefficient-major, RGB inner
    q = _round(rest * 128.0 + 128.0)
    bucket = np.full(rest.shape[1], 16.0)
    bucket[:9] = 8.0  # band 1: 3 coefficients × 3 channels get 5 bits
    q = np.floor((q + bucket / 2) / bucket) * bucket
    packed: U8 = np.clip(q, 0, 255).astype(np.uint8)
    return packed


def write_spz(path: Path, splats: SplatArrays) -> int:
    """Write finite ``splats`` as ``.spz`` (gzip level 6, atomically); returns the count."""
    payload = encode_spz(splats)
    with atomic_path(path) as temp:
        temp.write_bytes(gzip.compress(payload, compresslevel=6, mtime=0))
    return len(splats)


def read_spz(path: Path) -> SplatArrays:
    """Decode an ``.spz`` (versions 1–3).

    Raises:
        SpzFormatError: naming ``path`` and the problem.
    """
    if not path.is_file():
        raise SpzFormatError(f"SPZ file not found: {path}")
    try:
        payload = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise SpzFormatError(
            f"{path}: not a readable gzip stream ({exc}); not an SPZ file"
        ) from exc
    return decode_spz(payload, str(path))


def decode_spz(payload: bytes, name: str = "SPZ data") -> SplatArrays:
    """Decode an uncompressed SPZ payload (header + columns)."""
    if len(payload) < _HEADER.size:
        raise SpzFormatError(f"{name}: {len(payload)} bytes is too short for an SPZ header")
    magic, version, n, degree, bits, _flags, _ = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise SpzFormatError(f"{name}: bad magic {magic:#010x}; not an SPZ file")
    if version not in (1, 2, 3) or degree > 3:
        raise SpzFormatError(f"{name}: SPZ version {version} / SH degree {degree} not supported")
    k = sh_coefficients(degree) - 1
    sizes = [n * (6 if version == 1 else 9), n, 3 * n, 3 * n, n * (4 if version == 3 else 3),
             3 * k * n]  # fmt: skip
    if len(payload) != _HEADER.size + sum(sizes):
        raise SpzFormatError(
            f"{name}: {len(payload) - _HEADER.size} bytes of data, but {n} Gaussians of SH "
            f"degree {degree} need {sum(sizes)}; truncated or not an SPZ file"
        )
    offsets = np.cumsum([_HEADER.size, *sizes])
    raw = np.frombuffer(payload, dtype=np.uint8)
    pos, alpha, color, scale, rot, sh = (raw[a:b] for a, b in itertools.pairwise(offsets))
    return SplatArrays(
        means=_decode_positions(pos, n, version, bits),
        quats=_decode_rotations(rot, n, version),
        log_scales=(scale.reshape(n, 3) / 16.0 - 10.0).astype(np.float32),
        logit_opacities=_logit(alpha.astype(np.float64) / 255.0),
        sh=np.concatenate(
            [((color.reshape(n, 1, 3) / 255.0 - 0.5) / COLOR_SCALE),
             (sh.reshape(n, k, 3).astype(np.float64) - 128.0) / 128.0], axis=1
        ).astype(np.float32),
    )  # fmt: skip


def _decode_positions(pos: U8, n: int, version: int, bits: int) -> F32:
    if version == 1:
        return pos.view("<f2").reshape(n, 3).astype(np.float32)
    b = pos.reshape(n * 3, 3).astype(np.int32)
    fixed = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    return (fixed.astype(np.float64) / (1 << bits)).reshape(n, 3).astype(np.float32)


def _decode_rotations(rot: U8, n: int, version: int) -> F32:
    if version < 3:
        xyz = rot.reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(axis=1)))
        return np.concatenate([w[:, None], xyz], axis=1).astype(np.float32)
    packed = rot.view("<u4").astype(np.int64)
    largest = packed >> 30
    xyzw = np.zeros((n, 4))
    rows = np.arange(n)
    for j in (3, 2, 1, 0):
        skip = largest == j
        value = math.sqrt(0.5) * (packed & 511) / 511.0
        value = np.where((packed >> 9) & 1, -value, value)
        xyzw[rows, j] = np.where(skip, xyzw[rows, j], value)
        packed = np.where(skip, packed, packed >> 10)
    xyzw[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (xyzw * xyzw).sum(axis=1)))
    return xyzw[:, [3, 0, 1, 2]].astype(np.float32)


def _logit(alpha: NDArray[np.float64]) -> F32:
    a = np.clip(alpha, 1e-6, 1 - 1e-6)
    return np.log(a / (1 - a)).astype(np.float32)


def read_arrays(path: Path, dc_only: bool = False) -> SplatArrays:
    """The Gaussians of an ``.spz`` (the registry's reader)."""
    splats = read_spz(path)
    return splats.with_sh_degree(0) if dc_only else splats


def write_arrays(path: Path, splats: SplatArrays) -> int:
    """:func:`write_spz` (the registry's writer)."""
    return write_spz(path, splats)
