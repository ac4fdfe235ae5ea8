"""PlayCanvas SOG (version 2): a zip of ``meta.json`` and lossless WebP images.

Layout (what splat-transform writes and SuperSplat / PlayCanvas / Spark read). Gaussians are
stored in Morton order, one pixel each, row-major in ``W × H`` images with
``W = ceil(√N / 4) · 4`` and ``H = ceil(N / W / 4) · 4``; unused pixels are zero.

- ``means_l.webp`` / ``means_u.webp``: low / high byte (RGB = x, y, z) of a 16-bit fixed-point
  ``t = sign(p)·ln(|p| + 1)`` between ``meta.means.mins`` and ``maxs`` (per axis).
- ``quats.webp``: smallest three: the largest-magnitude component of the unit ``(w, x, y, z)``
  is made positive and dropped, its index + 252 goes in A; the other three, times √2, are
  mapped from [-1, 1] to RGB bytes.
- ``scales.webp``: RGB = indices into ``meta.scales.codebook`` (256 log-scales, shared by the
  three axes).
- ``sh0.webp``: RGB = indices into ``meta.sh0.codebook`` (256 ``f_dc`` values), A =
  ``sigmoid(opacity) · 255``.
- SH degree ≥ 1: ``shN_labels.webp`` (RG = 16-bit palette index) and ``shN_centroids.webp``
  (palette entry ``i`` is ``K − 1`` pixels from pixel ``i · (K − 1)`` of a ``64 · (K − 1)``-wide
  image; RGB = indices into ``meta.shN.codebook`` for the red, green, blue coefficient).

Quantisation bounds (what a decoded file is guaranteed to keep):

- positions: ``t`` within half a 16-bit step, ``(max − min) / 131070`` per axis;
- rotations: each of the three stored components of the unit quaternion within
  ``1 / (255·√2) ≈ 0.0028`` (the fourth is recomputed), so the same rotation up to sign;
- log-scales and ``f_dc``: each value decodes to its **nearest** codebook entry;
- opacity: ``sigmoid`` within ``0.5 / 255``;
- SH bands 1–3: lossy (a k-means palette of up to 65536 entries, then a 256-entry codebook),
  no per-value bound; each Gaussian gets the palette entry nearest it in the two-level search of
  :func:`~pipeline.formats.quantize.kmeans`.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.formats.arrays import F32, SplatArrays, sh_coefficients
from pipeline.formats.quantize import codebook_1d, kmeans, morton_order

__all__ = ["SogFormatError", "encode_sog", "read_sog", "write_sog"]

U8 = NDArray[np.uint8]
_SQRT2 = math.sqrt(2.0)
_GENERATOR = "splatter-node"


class SogFormatError(InputError):
    """A ``.sog`` file that cannot be read: not a zip, a bad ``meta.json``, a missing image."""


def image_size(count: int) -> tuple[int, int]:
    """``(width, height)`` of the per-Gaussian images for ``count`` Gaussians."""
    width = max(4, math.ceil(math.sqrt(count) / 4) * 4)
    height = max(4, math.ceil(count / width / 4) * 4)
    return width, height


def palette_size(count: int) -> int:
    """splat-transform's SH palette size: ``min(64, 2^floor(log2(N / 1024))) · 1024``."""
    if count < 2048:
        return 1024
    return int(min(64, 2 ** math.floor(math.log2(count / 1024))) * 1024)


def write_sog(path: Path, splats: SplatArrays, sh_iterations: int = 10) -> int:
    """Write ``splats`` (finite) as a bundled ``.sog`` (atomically); returns the count."""
    files = encode_sog(splats, sh_iterations)
    with atomic_path(path) as temp, zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return len(splats)


def encode_sog(splats: SplatArrays, sh_iterations: int = 10) -> dict[str, bytes]:
    """The files of a SOG: ``{"meta.json": ..., "means_l.webp": ..., ...}``.

    Raises:
        ValueError: a non-finite parameter (name the rows first; callers drop or reject them).
    """
    bad = splats.non_finite_rows()
    if bad.size:
        first = int(bad[0])
        raise ValueError(f"{bad.size} Gaussians have NaN or infinite parameters (row {first})")
    n = len(splats)
    order = morton_order(splats.means)
    s = splats.take(order)
    size = image_size(n)
    images: dict[str, U8] = {}
    meta: dict[str, Any] = {"version": 2, "asset": {"generator": _GENERATOR}, "count": n}
    images["means_l.webp"], images["means_u.webp"], meta["means"] = _encode_means(s.means)
    images["quats.webp"] = _pixels(_encode_quats(s.quats))
    meta["quats"] = {"files": ["quats.webp"]}
    scale_book, scale_labels = codebook_1d(s.log_scales)
    images["scales.webp"] = _pixels(scale_labels)
    meta["scales"] = {"codebook": scale_book.tolist(), "files": ["scales.webp"]}
    dc_book, dc_labels = codebook_1d(np.ascontiguousarray(s.sh[:, 0, :]))
    images["sh0.webp"] = _pixels(np.concatenate([dc_labels, _opacity_bytes(s)[:, None]], 1))
    meta["sh0"] = {"codebook": dc_book.tolist(), "files": ["sh0.webp"]}
    if s.sh_degree > 0:
        shn_images, meta["shN"] = _encode_sh_rest(s, sh_iterations)
        images.update(shn_images)
    files = {name: _webp(pixels, size if pixels.ndim == 2 else None)
             for name, pixels in images.items()}  # fmt: skip
    files["meta.json"] = json.dumps(meta).encode("utf-8")
    return files


def _encode_means(means: F32) -> tuple[U8, U8, dict[str, Any]]:
    t = np.sign(means.astype(np.float64)) * np.log1p(np.abs(means.astype(np.float64)))
    low, high = (t.min(axis=0), t.max(axis=0)) if len(t) else (np.zeros(3), np.zeros(3))
    span = np.where(high > low, high - low, 1.0)
    q = np.rint((t - low) / span * 65535.0).astype(np.uint16)
    files = ["means_l.webp", "means_u.webp"]
    meta = {"mins": low.tolist(), "maxs": high.tolist(), "files": files}
    return _pixels((q & 0xFF).astype(np.uint8)), _pixels((q >> 8).astype(np.uint8)), meta


def _encode_quats(quats: F32) -> U8:
    q = quats.astype(np.float64)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), [1.0, 0.0, 0.0, 0.0])
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q *= np.where(q[rows, largest] < 0, -_SQRT2, _SQRT2)[:, None]
    keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    small = np.take_along_axis(q, keep, axis=1)
    out = np.empty((len(q), 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(255.0 * (small * 0.5 + 0.5)), 0, 255)
    out[:, 3] = 252 + largest
    return out


def _opacity_bytes(s: SplatArrays) -> U8:
    alpha = 1.0 / (1.0 + np.exp(-s.logit_opacities.astype(np.float64)))
    return np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)


def _encode_sh_rest(s: SplatArrays, iterations: int) -> tuple[dict[str, U8], dict[str, Any]]:
    n, coeffs = len(s), sh_coefficients(s.sh_degree) - 1
    rest = s.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * coeffs)  # channel-major, like PLY
    centroids, labels = kmeans(rest, palette_size(n), iterations=iterations)
    book, centroid_labels = codebook_1d(centroids)  # [P, 3·coeffs]
    count = len(centroids)
    rows = math.ceil(count / 64)
    palette = np.zeros((rows * 64 * coeffs, 4), dtype=np.uint8)
    per_coefficient = centroid_labels.reshape(count, 3, coeffs).transpose(0, 2, 1)
    palette[: count * coeffs, :3] = per_coefficient.reshape(-1, 3)
    palette[: count * coeffs, 3] = 255
    label_pixels = np.zeros((n, 4), dtype=np.uint8)
    label_pixels[:, 0] = labels & 0xFF
    label_pixels[:, 1] = labels >> 8
    label_pixels[:, 3] = 255
    images = {"shN_centroids.webp": palette.reshape(rows, 64 * coeffs, 4),
              "shN_labels.webp": label_pixels}  # fmt: skip
    meta = {"count": count, "bands": s.sh_degree, "codebook": book.tolist(),
            "files": ["shN_centroids.webp", "shN_labels.webp"]}  # fmt: skip
    return images, meta


def _pixels(columns: U8) -> U8:
    """``[N, C]`` bytes (C ≤ 4) as ``[N, 4]`` RGBA pixels, missing channels 0 and A 255."""
    out = np.zeros((len(columns), 4), dtype=np.uint8)
    out[:, 3] = 255
    out[:, : columns.shape[1]] = columns
    return out


def _webp(pixels: U8, size: tuple[int, int] | None) -> bytes:
    """Lossless WebP of ``[N, 4]`` pixels laid out row-major in ``size`` (or ``[H, W, 4]``)."""
    from PIL import Image

    if size is not None:
        width, height = size
        image = np.zeros((width * height, 4), dtype=np.uint8)
        image[: len(pixels)] = pixels
        pixels = image.reshape(height, width, 4)
    buffer = io.BytesIO()
    # exact: keep the RGB of transparent pixels (sh0's A is opacity and may be 0).
    Image.fromarray(pixels, "RGBA").save(buffer, "WEBP", lossless=True, exact=True)
    return buffer.getvalue()


def read_sog(path: Path) -> SplatArrays:
    """Decode a bundled ``.sog`` (version 2) into float32 arrays, in the file's (Morton) order.

    Raises:
        SogFormatError: naming ``path`` and the problem (not a zip, a truncated zip, no or a bad
            ``meta.json``, an image it names missing or undecodable or too small).
    """
    try:
        with zipfile.ZipFile(path) as bundle:
            return _decode(path, _Bundle(path, bundle))
    except FileNotFoundError:
        raise SogFormatError(f"SOG file not found: {path}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise SogFormatError(f"{path}: not a readable SOG zip ({exc})") from exc


class _Bundle:
    """The members of an open ``.sog`` zip, with errors that name the file."""

    def __init__(self, path: Path, bundle: zipfile.ZipFile) -> None:
        self.path, self.bundle = path, bundle
        self.names = set(bundle.namelist())

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise SogFormatError(f"{self.path}: meta.json names '{name}', which the zip lacks")
        try:
            return self.bundle.read(name)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise SogFormatError(f"{self.path}: cannot read '{name}' ({exc})") from exc

    def image(self, name: str, min_pixels: int) -> U8:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(self.read(name))) as image:
                pixels = np.asarray(image.convert("RGBA"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise SogFormatError(f"{self.path}: '{name}' is not a readable image ({exc})") from exc
        flat = pixels.reshape(-1, 4)
        if len(flat) < min_pixels:
            raise SogFormatError(
                f"{self.path}: '{name}' has {len(flat)} pixels, fewer than the {min_pixels} needed"
            )
        return flat


def _decode(path: Path, bundle: _Bundle) -> SplatArrays:
    meta = _meta(path, bundle)
    n = int(meta["count"])
    try:
        means = _decode_means(bundle, meta["means"], n)
        quats = _decode_quats(bundle.image(meta["quats"]["files"][0], n)[:n])
        scales = bundle.image(meta["scales"]["files"][0], n)[:n]
        log_scales = _codebook(path, meta["scales"], "scales")[scales[:, :3]]
        sh0 = bundle.image(meta["sh0"]["files"][0], n)[:n]
        dc = _codebook(path, meta["sh0"], "sh0")[sh0[:, :3]]
        alpha = np.clip(sh0[:, 3].astype(np.float64) / 255.0, 1e-6, 1 - 1e-6)
        logits = np.log(alpha / (1 - alpha)).astype(np.float32)
        rest = _decode_sh_rest(path, bundle, meta.get("shN"), n)
    except (KeyError, IndexError, TypeError) as exc:
        raise SogFormatError(f"{path}: meta.json lacks or mis-states {exc}") from exc
    sh = np.concatenate([dc[:, None, :], rest], axis=1).astype(np.float32)
    return SplatArrays(means, quats, log_scales.astype(np.float32), logits, sh)


def _meta(path: Path, bundle: _Bundle) -> dict[str, Any]:
    if "meta.json" not in bundle.names:
        raise SogFormatError(f"{path}: no meta.json in the zip; not a SOG file")
    try:
        meta = json.loads(bundle.read("meta.json"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SogFormatError(f"{path}: meta.json is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("version") != 2:
        version = meta.get("version") if isinstance(meta, dict) else None
        raise SogFormatError(f"{path}: SOG version {version!r} is not supported (only 2)")
    if not isinstance(meta.get("count"), int) or meta["count"] < 0:
        raise SogFormatError(f"{path}: meta.json has no valid 'count'")
    return meta


def _codebook(path: Path, section: dict[str, Any], name: str) -> NDArray[np.float64]:
    book = np.asarray(section["codebook"], dtype=np.float64)
    if book.shape != (256,) or not np.isfinite(book).all():
        raise SogFormatError(f"{path}: meta.json's {name} codebook is not 256 finite numbers")
    return book


def _decode_means(bundle: _Bundle, section: dict[str, Any], n: int) -> F32:
    low = bundle.image(section["files"][0], n)[:n, :3].astype(np.float64)
    high = bundle.image(section["files"][1], n)[:n, :3].astype(np.float64)
    mins, maxs = np.asarray(section["mins"], np.float64), np.asarray(section["maxs"], np.float64)
    span = np.where(maxs - mins != 0, maxs - mins, 1.0)
    t = mins + span * ((low + 256.0 * high) / 65535.0)
    return (np.sign(t) * np.expm1(np.abs(t))).astype(np.float32)


def _decode_quats(pixels: U8) -> F32:
    n = len(pixels)
    tag = pixels[:, 3].astype(np.int64)
    valid = (tag >= 252) & (tag <= 255)
    largest = np.where(valid, tag - 252, 0)
    small = (pixels[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / _SQRT2
    q = np.zeros((n, 4))
    keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    np.put_along_axis(q, keep, small, axis=1)
    q[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (small * small).sum(axis=1)))
    q[~valid] = [1.0, 0.0, 0.0, 0.0]
    return q.astype(np.float32)


def _decode_sh_rest(path: Path, bundle: _Bundle, section: Any, n: int) -> F32:
    if not section or int(section.get("bands", 0)) == 0:
        return np.zeros((n, 0, 3), dtype=np.float32)
    bands = int(section["bands"])
    if bands not in (1, 2, 3):
        raise SogFormatError(f"{path}: meta.json's shN.bands {bands} is not 1, 2 or 3")
    coeffs = sh_coefficients(bands) - 1
    count = int(section["count"])
    book = _codebook(path, section, "shN")
    palette = bundle.image(section["files"][0], count * coeffs)
    if len(palette) % (64 * coeffs):
        raise SogFormatError(f"{path}: shN centroids image is not {64 * coeffs} pixels wide")
    labels = bundle.image(section["files"][1], n)[:n]
    index = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
    entries = book[palette[: count * coeffs, :3]].reshape(count, coeffs, 3)
    rest = np.zeros((n, coeffs, 3), dtype=np.float32)
    ok = index < count
    rest[ok] = entries[index[ok]]
    return rest


def read_arrays(path: Path, dc_only: bool = False) -> SplatArrays:
    """The Gaussians of a ``.sog`` (the registry's reader)."""
    splats = read_sog(path)
    return splats.with_sh_degree(0) if dc_only else splats


def write_arrays(path: Path, splats: SplatArrays) -> int:
    """:func:`write_sog` (the registry's writer)."""
    return write_sog(path, splats)
