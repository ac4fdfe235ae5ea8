"""The antimatter15 ``.splat`` format, byte for byte as ply2splat 0.6 writes it (numpy only).

Record: 32 bytes per Gaussian, little-endian, no header::

    bytes  0–11  position x, y, z      float32 ×3, as stored
    bytes 12–23  scale x, y, z         float32 ×3, exp(log-scale)
    bytes 24–27  R, G, B, A            uint8: clamp(0.5 + C0·f_dc, 0, 1)·255, sigmoid(opacity)·255
    bytes 28–31  rotation w, x, y, z   uint8: q/‖q‖·128 + 128 clamped to [0, 255]

Byte equality with ply2splat needs its exact float32 arithmetic: every step in float32 with no
fused multiply-add (numpy's ufuncs round after every operation, as Rust does), float → uint8 by
truncation (NaN → 0, like Rust's saturating ``as u8``), a zero-length quaternion → identity,
and ``exp`` from the C library (``expf``, which Rust's ``f32::exp`` calls). numpy's float32
``exp`` differs from ``expf`` in the last bit for a large share of inputs, and a float64 ``exp``
rounded to float32 in about 0.06 % of them: where ``expf`` (error ≤ 0.502 ULP) is not
correctly rounded. :func:`c_expf` therefore rounds a float64 ``exp`` and asks the C library
itself only for the values within 1/256 ULP of a rounding midpoint (about 1 % of them): the
others cannot round differently, so the result is ``expf``'s, bit for bit.

No numba and no torch here: ``python -m pipeline convert`` of a PLY to ``.splat`` loads only
numpy. The per-Gaussian arithmetic is a handful of whole-array float32 operations.

Order: ascending by the float32 key ``-(exp(s0 + s1 + s2) · alpha)`` (descending volume ×
opacity), ties by x, then y, then z ascending, all compared with IEEE ``totalOrder`` (Rust's
``f32::total_cmp``), so the output is deterministic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_path
from pipeline.formats.arrays import F32, SplatArrays

__all__ = [
    "SPLAT_RECORD",
    "SplatFile",
    "c_expf",
    "encode_splat_arrays",
    "read_splat",
    "write_splat_arrays",
]

SPLAT_RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3),
                         ("rgba", "u1", 4), ("rotation", "u1", 4)])  # fmt: skip
_SH_C0 = np.float32(0.2820948)  # ply2splat's constant, 0.282_094_8 as f32
_ZERO, _HALF, _ONE = np.float32(0.0), np.float32(0.5), np.float32(1.0)
_F128, _F255 = np.float32(128.0), np.float32(255.0)
_HARD_FRACTION = 2.0**-8  # of an ULP: expf's 0.502-ULP bound leaves 0.002 ULP of doubt
_DROPPED_BITS = np.int64((1 << 29) - 1)
_BLOCK = 1 << 15  # Gaussians per block of the encoder
_MIDPOINT = np.int64(1 << 28)


@functools.cache
def _libm_expf() -> Any:
    """The C library's ``expf`` (ctypes), or ``None`` without a C math library."""
    name = ctypes.util.find_library("m")
    try:
        expf = ctypes.CDLL(name).expf if name else None
    except (OSError, AttributeError):
        return None
    if expf is not None:
        expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


def c_expf(x: NDArray[np.floating]) -> F32:
    """``expf`` of every element of a float32 array (exactly the C library's results).

    A float64 ``exp`` rounded to float32 is ``expf``'s result except, possibly, where the exact
    value lies within ``expf``'s error of a midpoint between two floats; those few values
    (within 1/256 ULP of one; zeros, subnormals, infinities, NaN) are computed by the C
    library's ``expf`` itself. Without a C math library the float64 rounding is returned.
    """
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    with np.errstate(all="ignore"):
        exact = np.exp(x32.astype(np.float64))
        result = exact.astype(np.float32)
    # The 29 float64 mantissa bits that rounding to float32 drops: 2^28 is the midpoint.
    dropped = exact.view(np.int64) & _DROPPED_BITS
    hard = np.abs(dropped - _MIDPOINT) < _MIDPOINT * (2 * _HARD_FRACTION)
    exponent = result.view(np.int32) & 0x7F800000  # 0, subnormal, inf, NaN: ask expf
    hard |= (exponent == 0) | (exponent == 0x7F800000)
    expf = _libm_expf()
    if expf is not None:
        flat_x, flat_r = x32.reshape(-1), result.reshape(-1)
        for i in np.flatnonzero(hard.reshape(-1)).tolist():
            flat_r[i] = expf(float(flat_x[i]))
    return result


def _clamp(v: NDArray[Any], low: np.float32, high: np.float32) -> NDArray[Any]:
    """Rust's ``f32::clamp``: NaN stays NaN."""
    clamped: NDArray[Any] = np.minimum(np.maximum(v, low), high)
    return clamped


def _to_u8(v: NDArray[Any]) -> NDArray[np.uint8]:
    """Rust's ``v as u8`` for ``v`` in [0, 255] or NaN: truncation, NaN → 0."""
    return np.where(np.isnan(v), _ZERO, v).astype(np.uint8)


def _pack(means: F32, log_scales: F32, dc: F32, logits: F32, quats: F32) -> tuple[F32, F32]:
    """``(words [N, 8] float32 records, keys [N])``: ply2splat's ``from_ply``, operation for
    operation, on whole arrays, in blocks of :data:`_BLOCK` Gaussians (temporaries stay small
    and in cache instead of costing fresh pages for every operation)."""
    n = len(means)
    words = np.empty((n, 8), dtype="<f4")  # eight 4-byte words per record
    keys = np.empty(n, dtype=np.float32)
    for start in range(0, n, _BLOCK):
        block = slice(start, start + _BLOCK)
        _pack_block(means[block], log_scales[block], dc[block], logits[block], quats[block],
                    words[block], keys[block])  # fmt: skip
    return words, keys


def _pack_block(means: F32, log_scales: F32, dc: F32, logits: F32, quats: F32,
                words: F32, keys: F32) -> None:  # fmt: skip
    """One block of :func:`_pack`, written into ``words`` and ``keys``."""
    raw = words.view(np.uint8)
    words[:, :3] = means
    words[:, 3:6] = c_expf(log_scales)
    with np.errstate(all="ignore"):
        raw[:, 24:27] = _to_u8(_clamp(_HALF + _SH_C0 * dc, _ZERO, _ONE) * _F255)
        alpha = _clamp(_ONE / (_ONE + c_expf(-logits)), _ZERO, _ONE)
        raw[:, 27] = _to_u8(alpha * _F255)
        w, x, y, z = quats.T
        length = np.sqrt(w * w + x * x + y * y + z * z)
        unit = length > _ZERO  # zero or NaN length: identity
        q = quats / np.where(unit, length, _ONE)[:, None]
        q[~unit] = (_ONE, _ZERO, _ZERO, _ZERO)
        raw[:, 28:32] = _to_u8(_clamp(q * _F128 + _F128, _ZERO, _F255))
        # ply2splat's source says -(volume * alpha); its compiled code (LLVM folds the
        # negation into the product) computes volume * -alpha. Equal for numbers; for NaN
        # keys (infinite or NaN parameters) only this form gives the NaN sign, and so the
        # order, that it writes.
        volume = c_expf(log_scales[:, 0] + log_scales[:, 1] + log_scales[:, 2])
        keys[:] = volume * -alpha


def encode_splat_arrays(splats: SplatArrays, sort: bool = True) -> NDArray[np.void]:
    """The ``.splat`` records ``[N]`` (dtype :data:`SPLAT_RECORD`) of ``splats``.

    Only the DC colour is kept. With ``sort`` the records are in ply2splat's importance order
    (see the module docstring). Inputs are not modified.
    """

    def f32(a: NDArray[np.floating]) -> F32:
        return np.ascontiguousarray(a, dtype=np.float32)

    means = f32(splats.means)
    words, keys = _pack(means, f32(splats.log_scales), f32(splats.sh[:, 0, :]),
                        f32(splats.logit_opacities), f32(splats.quats))  # fmt: skip
    if sort:
        # Plain float rows gather far faster than structured records.
        words = np.take(words, _importance_order(keys, means), axis=0)
    return words.view(SPLAT_RECORD).reshape(len(means))


def _total_order(values: F32) -> NDArray[np.int32]:
    """int32 keys that sort like Rust's ``f32::total_cmp`` (IEEE totalOrder)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def _importance_order(keys: F32, means: F32) -> NDArray[np.intp]:
    """Indices sorting by ``keys``, then x, y, z, all ascending in IEEE totalOrder."""
    x, y, z = means.T
    # One int64 sort on (key, x) packed together; only exact ties on both (duplicated
    # Gaussians, rare) need y and z: those runs alone are re-sorted by (key, x, y, z).
    primary = (_total_order(keys).astype(np.int64) << 32) | (
        _total_order(x).astype(np.int64) + 2**31
    )
    order = np.argsort(primary)
    ranked = np.take(primary, order)
    equal = ranked[1:] == ranked[:-1]
    if equal.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= equal
        tied[:-1] |= equal
        at = np.flatnonzero(tied)  # whole runs of equal (key, x), in ascending order
        members = order[at]
        by_yz = np.lexsort((_total_order(z[members]), _total_order(y[members]), primary[members]))
        order[at] = members[by_yz]
    return order


def write_splat_arrays(path: Path, splats: SplatArrays, sort: bool = True) -> int:
    """Write ``splats`` as a ``.splat`` file (atomically); returns the record count."""
    records = encode_splat_arrays(splats, sort=sort)
    with atomic_path(path) as temp:
        records.tofile(temp)
    return len(records)


@dataclass
class SplatFile:
    """Decoded ``.splat`` records.

    Attributes:
        positions: ``[N, 3]`` float32; scales: ``[N, 3]`` float32 (linear, not log);
        rgba: ``[N, 4]`` uint8; rotation: ``[N, 4]`` uint8 (decode with ``(b - 128) / 128``).
    """

    positions: F32
    scales: F32
    rgba: NDArray[np.uint8]
    rotation: NDArray[np.uint8]


def read_splat(path: Path) -> SplatFile:
    """Read a ``.splat`` file; raises ``ValueError`` if its size is not a multiple of 32."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % SPLAT_RECORD.itemsize:
        raise ValueError(f"{path}: size {raw.size} bytes is not a multiple of 32")
    records = raw.view(SPLAT_RECORD)
    return SplatFile(
        positions=records["position"].copy(),
        scales=records["scale"].copy(),
        rgba=records["rgba"].copy(),
        rotation=records["rotation"].copy(),
    )


def read_arrays(path: Path, dc_only: bool = True) -> SplatArrays:
    """A ``.splat`` file as Gaussians (SH degree 0: the format keeps only the DC colour).

    Bytes decode to the middle of their quantisation step, so writing the result again gives
    the same colour and opacity bytes: colour ``f_dc = ((b + 0.5) / 255 − 0.5) / C0``, opacity
    the logit of ``(a + 0.5) / 255`` (``a = 255`` → 20, which float32 ``sigmoid`` makes 1),
    scales ``ln(max(s, FLT_MIN))``, quaternion ``(b − 128) / 128``.

    Raises:
        InputError: missing file, or a size that is not a multiple of 32 bytes.
    """
    from pipeline.errors import InputError

    del dc_only  # there is nothing beyond the DC colour to skip
    if not path.is_file():
        raise InputError(f".splat file not found: {path}")
    try:
        records = read_splat(path)
    except ValueError as exc:
        raise InputError(f"{exc}; not a .splat file, or truncated") from exc
    rgba = records.rgba.astype(np.float64)
    dc = ((rgba[:, :3] + 0.5) / 255.0 - 0.5) / float(_SH_C0)
    alpha = (rgba[:, 3] + 0.5) / 255.0
    logits = np.where(records.rgba[:, 3] == 255, 20.0, np.log(alpha / np.maximum(1 - alpha, 1e-12)))
    tiny = np.finfo(np.float32).tiny
    return SplatArrays(
        means=records.positions,
        quats=((records.rotation.astype(np.float32) - 128.0) / 128.0),
        log_scales=np.log(np.maximum(records.scales, tiny)).astype(np.float32),
        logit_opacities=logits.astype(np.float32),
        sh=dc.astype(np.float32).reshape(-1, 1, 3),
    )


def write_arrays(path: Path, splats: SplatArrays) -> int:
    """:func:`write_splat_arrays` in ply2splat's order (the registry's writer)."""
    return write_splat_arrays(path, splats)
