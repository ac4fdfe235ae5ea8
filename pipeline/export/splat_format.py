"""The antimatter15 ``.splat`` format, byte for byte as ply2splat 0.6 writes it.

Record: 32 bytes per Gaussian, little-endian, no header::

    bytes  0–11  position x, y, z      float32 ×3, as stored
    bytes 12–23  scale x, y, z         float32 ×3, exp(log-scale)
    bytes 24–27  R, G, B, A            uint8: clamp(0.5 + C0·f_dc, 0, 1)·255, sigmoid(opacity)·255
    bytes 28–31  rotation w, x, y, z   uint8: q/‖q‖·128 + 128 clamped to [0, 255]

Byte equality with ply2splat needs its exact float32 arithmetic: every step in float32 with no
fused multiply-add, float → uint8 by truncation (NaN → 0, like Rust's saturating ``as u8``),
a zero-length quaternion → identity, and ``exp`` from the C library (``expf``, which Rust's
``f32::exp`` calls): numpy's own float32 ``exp`` differs from it in the last bit for a large
share of inputs, and a float64 ``exp`` rounded to float32 still in about 0.06 % of them.

Order: ascending by the float32 key ``-(exp(s0 + s1 + s2) · alpha)`` (descending volume ×
opacity), ties by x, then y, then z ascending, all compared with IEEE ``totalOrder`` (Rust's
``f32::total_cmp``), so the output is deterministic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numba
import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from pipeline.atomic import atomic_path
from pipeline.splats import Splats

__all__ = [
    "SPLAT_RECORD",
    "SplatFile",
    "c_expf",
    "encode_splat",
    "read_splat",
    "write_splat",
]

SPLAT_RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3),
                         ("rgba", "u1", 4), ("rotation", "u1", 4)])  # fmt: skip
_SH_C0 = np.float32(0.2820948)  # ply2splat's constant, 0.282_094_8 as f32

F32 = NDArray[np.float32]


@functools.cache
def _expf_ufunc() -> Callable[[F32], F32]:
    """A float32 ufunc calling the C library's ``expf`` (compiled on first use)."""
    vectorize: Any = numba.vectorize(["float32(float32)"])  # type: ignore[no-untyped-call]
    libm_name = ctypes.util.find_library("m")
    try:
        expf = ctypes.CDLL(libm_name).expf if libm_name else None
    except (OSError, AttributeError):
        expf = None
    if expf is None:  # no C math library to bind: numba lowers math.exp to the platform's expf
        return cast(Callable[[F32], F32], vectorize(lambda x: math.exp(x)))
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return cast(Callable[[F32], F32], vectorize(lambda x: expf(x)))


def c_expf(x: F32) -> F32:
    """``expf`` of every element of a float32 array (exactly the C library's results)."""
    return _expf_ufunc()(np.ascontiguousarray(x, dtype=np.float32))


def encode_splat(splats: Splats, sort: bool = True) -> NDArray[np.void]:
    """The ``.splat`` records ``[N]`` (dtype :data:`SPLAT_RECORD`) of ``splats``.

    Only the DC colour is kept. Parameters are taken as float32, like a float PLY holds them.
    With ``sort`` the records are in ply2splat's importance order (see the module docstring).
    """

    def f32(t: Tensor) -> F32:
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

    means, log_scales = f32(splats.means), f32(splats.log_scales)
    n = len(means)
    # Infinite and NaN parameters are legal input here; their bytes follow the Rust rules.
    with np.errstate(all="ignore"):
        alpha = _alpha(f32(splats.logit_opacities))
        # Eight 4-byte words per record; plain rows gather far faster than structured ones.
        words = np.empty((n, 8), dtype="<f4")
        words[:, 0:3] = means
        words[:, 3:6] = c_expf(log_scales)
        rgba = np.empty((n, 4), dtype=np.uint8)
        dc = np.array(splats.sh[:, 0, :].detach().cpu().numpy(), dtype=np.float32)  # a copy
        rgba[:, :3] = _to_u8(_dc_to_unit(dc) * np.float32(255))
        rgba[:, 3] = _to_u8(alpha * np.float32(255))
        packed = words.view("<u4")
        packed[:, 6] = rgba.view("<u4")[:, 0]
        packed[:, 7] = _encode_quats(f32(splats.quats)).view("<u4")[:, 0]
        if sort:
            words = np.take(words, _importance_order(log_scales, alpha, means), axis=0)
    return words.view(SPLAT_RECORD).reshape(n)


def _dc_to_unit(dc: F32) -> F32:
    """``clamp(0.5 + C0 · dc, 0, 1)`` in float32, computed in place in ``dc``'s buffer."""
    np.multiply(dc, _SH_C0, out=dc)
    np.add(dc, np.float32(0.5), out=dc)
    return np.clip(dc, 0, 1, out=dc)


def _alpha(logits: F32) -> F32:
    """``sigmoid`` in float32 as ``1 / (1 + expf(-x))``, clamped to [0, 1]."""
    return (np.float32(1) / (np.float32(1) + c_expf(-logits))).clip(0, 1)


def _to_u8(values: F32) -> NDArray[np.uint8]:
    """Truncate values already in [0, 255] to uint8; NaN becomes 0 (Rust ``as u8``)."""
    values[np.isnan(values)] = 0
    return values.astype(np.uint8)


def _encode_quats(q: F32) -> NDArray[np.uint8]:
    """Quaternions ``[N, 4]`` → bytes: normalised in float32, ``·128 + 128``, clamped, truncated."""
    squares = q * q
    w2, x2, y2, z2 = squares.T
    length = np.sqrt(w2 + x2 + y2 + z2)  # summed left to right, as the Rust source
    unit = np.divide(q, length[:, None], out=squares)
    unit[~(length > 0)] = (1, 0, 0, 0)  # zero or NaN length: identity
    np.multiply(unit, np.float32(128), out=unit)
    np.add(unit, np.float32(128), out=unit)
    return _to_u8(np.clip(unit, 0, 255, out=unit))


def _total_order(values: F32) -> NDArray[np.int32]:
    """int32 keys that sort like Rust's ``f32::total_cmp`` (IEEE totalOrder)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def _importance_order(log_scales: F32, alpha: F32, means: F32) -> NDArray[np.intp]:
    """Indices sorting by ``-(expf(s0 + s1 + s2) · alpha)``, then x, y, z, all ascending."""
    s0, s1, s2 = log_scales.T
    # ply2splat's source says -(volume * alpha); its compiled code (LLVM folds the negation
    # into the product) computes volume * -alpha. Equal for numbers; for NaN keys (infinite
    # or NaN parameters) only this form gives the NaN sign, and so the order, that it writes.
    key = c_expf(s0 + s1 + s2) * -alpha
    x, y, z = means.T
    # One int64 sort on (key, x) packed together; only exact ties on both need y and z,
    # and then a full lexsort settles the order (rare: duplicated Gaussians).
    primary = (_total_order(key).astype(np.int64) << 32) | (
        _total_order(x).astype(np.int64) + 2**31
    )
    order = np.argsort(primary)
    tied = primary[order][1:] == primary[order][:-1]
    if tied.any():
        order = np.lexsort((_total_order(z), _total_order(y), primary))
    return order


def write_splat(path: Path, splats: Splats, sort: bool = True) -> int:
    """Write ``splats`` as a ``.splat`` file (atomically); returns the record count."""
    records = encode_splat(splats, sort=sort)
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
