"""The antimatter15 ``.splat`` format, byte for byte as ply2splat 0.6 writes it (numpy + numba).

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
numba lowers ``math.exp`` on a float32 to the LLVM intrinsic, which calls the platform's
``expf``; no fastmath, so nothing is vectorised or approximated.

The per-Gaussian arithmetic is one numba-compiled pass that mirrors ply2splat's ``from_ply``
operation for operation (no Python loop per Gaussian); sorting and gathering are numpy. The
kernels are compiled with ``cache=True`` (``__pycache__``; the Docker image warms it at build
time), so a command does not pay numba's compile time.

Order: ascending by the float32 key ``-(exp(s0 + s1 + s2) · alpha)`` (descending volume ×
opacity), ties by x, then y, then z ascending, all compared with IEEE ``totalOrder`` (Rust's
``f32::total_cmp``), so the output is deterministic. This module imports neither torch nor
plyfile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
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
_njit: Any = numba.njit
_vectorize: Any = numba.vectorize


@_njit(cache=True, inline="always")  # type: ignore[untyped-decorator]
def _clamp(v: np.float32, low: np.float32, high: np.float32) -> np.float32:
    """Rust's ``f32::clamp``: NaN stays NaN."""
    if v < low:
        return low
    if v > high:
        return high
    return v


@_njit(cache=True, inline="always")  # type: ignore[untyped-decorator]
def _to_u8(v: np.float32) -> np.uint8:
    """Rust's ``v as u8`` for ``v`` in [0, 255] or NaN: truncation, NaN → 0."""
    return np.uint8(0) if v != v else np.uint8(v)


@_vectorize(["float32(float32)"], cache=True)  # type: ignore[untyped-decorator]
def _expf(x: np.float32) -> float:
    return math.exp(x)


@_njit(cache=True)  # type: ignore[untyped-decorator]
def _pack(means: F32, log_scales: F32, dc: F32, logits: F32, quats: F32,
          words: F32, raw: NDArray[np.uint8], keys: F32) -> None:  # fmt: skip
    # One Gaussian per iteration, operation for operation as ply2splat's from_ply.
    for i in range(means.shape[0]):
        for k in range(3):
            words[i, k] = means[i, k]
            words[i, 3 + k] = math.exp(log_scales[i, k])
            raw[i, 24 + k] = _to_u8(_clamp(_HALF + _SH_C0 * dc[i, k], _ZERO, _ONE) * _F255)
        alpha = _clamp(_ONE / (_ONE + math.exp(-logits[i])), _ZERO, _ONE)
        raw[i, 27] = _to_u8(alpha * _F255)
        w, x, y, z = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        length = math.sqrt(w * w + x * x + y * y + z * z)
        if length > _ZERO:
            w, x, y, z = w / length, x / length, y / length, z / length
        else:  # zero or NaN length: identity
            w, x, y, z = _ONE, _ZERO, _ZERO, _ZERO
        raw[i, 28] = _to_u8(_clamp(w * _F128 + _F128, _ZERO, _F255))
        raw[i, 29] = _to_u8(_clamp(x * _F128 + _F128, _ZERO, _F255))
        raw[i, 30] = _to_u8(_clamp(y * _F128 + _F128, _ZERO, _F255))
        raw[i, 31] = _to_u8(_clamp(z * _F128 + _F128, _ZERO, _F255))
        # ply2splat's source says -(volume * alpha); its compiled code (LLVM folds the
        # negation into the product) computes volume * -alpha. Equal for numbers; for NaN
        # keys (infinite or NaN parameters) only this form gives the NaN sign, and so the
        # order, that it writes.
        keys[i] = math.exp(log_scales[i, 0] + log_scales[i, 1] + log_scales[i, 2]) * -alpha


def c_expf(x: F32) -> F32:
    """``expf`` of every element of a float32 array (exactly the C library's results)."""
    result: F32 = _expf(np.ascontiguousarray(x, dtype=np.float32))
    return result


def encode_splat_arrays(splats: SplatArrays, sort: bool = True) -> NDArray[np.void]:
    """The ``.splat`` records ``[N]`` (dtype :data:`SPLAT_RECORD`) of ``splats``.

    Only the DC colour is kept. With ``sort`` the records are in ply2splat's importance order
    (see the module docstring). Inputs are not modified.
    """

    def f32(a: NDArray[np.floating]) -> F32:
        return np.ascontiguousarray(a, dtype=np.float32)

    means = f32(splats.means)
    n = len(means)
    words = np.empty((n, 8), dtype="<f4")  # eight 4-byte words per record
    keys = np.empty(n, dtype=np.float32)
    _pack(means, f32(splats.log_scales), f32(splats.sh[:, 0, :]), f32(splats.logit_opacities),
          f32(splats.quats), words, words.view(np.uint8), keys)  # fmt: skip
    if sort:
        # Plain float rows gather far faster than structured records.
        words = np.take(words, _importance_order(keys, means), axis=0)
    return words.view(SPLAT_RECORD).reshape(n)


def _total_order(values: F32) -> NDArray[np.int32]:
    """int32 keys that sort like Rust's ``f32::total_cmp`` (IEEE totalOrder)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def _importance_order(keys: F32, means: F32) -> NDArray[np.intp]:
    """Indices sorting by ``keys``, then x, y, z, all ascending in IEEE totalOrder."""
    x, y, z = means.T
    # One int64 sort on (key, x) packed together; only exact ties on both need y and z,
    # and then a full (stable) lexsort settles the order (rare: duplicated Gaussians).
    primary = (_total_order(keys).astype(np.int64) << 32) | (
        _total_order(x).astype(np.int64) + 2**31
    )
    order = np.argsort(primary)
    ranked = np.take(primary, order)
    if (ranked[1:] == ranked[:-1]).any():
        order = np.lexsort((_total_order(z), _total_order(y), primary))
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


def warm_kernels() -> None:
    """Compile (or load from the cache) the numba kernels; the Docker build calls this."""
    splats = SplatArrays(np.zeros((2, 3), np.float32), np.ones((2, 4), np.float32),
                         np.zeros((2, 3), np.float32), np.zeros(2, np.float32),
                         np.zeros((2, 1, 3), np.float32))  # fmt: skip
    encode_splat_arrays(splats)
    c_expf(np.zeros(2, np.float32))
