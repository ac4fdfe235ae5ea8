"""3DGS PLY files from numpy: a fast reader for binary files and the writer ``convert`` uses.

The reader parses the header itself and maps a binary ``vertex`` element straight onto a numpy
structured dtype (no per-row Python, no plyfile); any other layout (ASCII, a list property, a
``vertex`` element after another element) falls back to :func:`pipeline.export.ply.read_ply`,
which handles every valid PLY. Both give the same Gaussians and the same errors
(:class:`~pipeline.errors.PlyFormatError`, naming the file and the problem).

The writer produces the layout of :func:`pipeline.export.ply.write_ply` (binary little-endian,
``x y z nx ny nz f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3``, all ``float``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import PlyFormatError
from pipeline.formats.arrays import F32, SplatArrays

__all__ = [
    "REQUIRED_PROPERTIES",
    "PlyArrays",
    "read_ply_arrays",
    "rest_property_names",
    "write_ply_arrays",
]

REQUIRED_PROPERTIES: tuple[str, ...] = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
_REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}  # number of f_rest_* properties -> SH degree
_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_MAX_HEADER = 1 << 20


@dataclass
class PlyArrays:
    """What :func:`read_ply_arrays` returns: the Gaussians and the header comments."""

    splats: SplatArrays
    comments: list[str] = field(default_factory=list)


@dataclass
class _Header:
    size: int  # bytes, up to and including "end_header\n"
    binary_order: str | None  # "<" or ">", None for ASCII
    vertex_count: int
    vertex_first: bool
    properties: list[tuple[str, str]]  # (name, numpy type code); "list" for list properties
    comments: list[str]


def read_ply_arrays(path: Path, dc_only: bool = False) -> PlyArrays:
    """Read a 3DGS PLY (any SH degree 0..3, extra or re-ordered properties, float or double).

    Args:
        path: the file.
        dc_only: ignore ``f_rest_*`` (SH degree 0 result; an odd count is then no error).

    Raises:
        PlyFormatError: as :func:`pipeline.export.ply.read_ply`.
    """
    header = _read_header(path)
    fast = (header.binary_order is not None and header.vertex_first
            and all(kind != "list" for _, kind in header.properties))  # fmt: skip
    if not fast:
        return _read_with_plyfile(path, dc_only)
    kinds = dict(header.properties)
    for name in REQUIRED_PROPERTIES:
        _check_float(kinds, name, path)
    rest = [] if dc_only else rest_property_names(kinds, path)
    for name in rest:
        _check_float(kinds, name, path)
    order = header.binary_order or "<"
    needed = header.size + header.vertex_count * sum(
        np.dtype(k).itemsize for _, k in header.properties
    )
    if path.stat().st_size < needed:
        raise PlyFormatError(
            f"{path}: malformed or truncated PLY data (expected at least {needed} bytes for "
            f"{header.vertex_count} vertices, the file has {path.stat().st_size})"
        )
    names = [*REQUIRED_PROPERTIES, *rest]
    block = _columns(path, header, order, names)
    return PlyArrays(_splats_from_block(block, {n: i for i, n in enumerate(names)}, rest),
                     header.comments)  # fmt: skip


def _columns(path: Path, header: _Header, order: str, names: list[str]) -> F32:
    """``[N, len(names)]`` float32: the named properties of every vertex, read through a
    memory map (only the pages of the vertex data are touched, once)."""
    n = header.vertex_count
    if n == 0:
        return np.zeros((0, len(names)), dtype=np.float32)
    kinds = {kind for _, kind in header.properties}
    if len(kinds) == 1:  # every property the same type: a plain [N, P] matrix
        index = [name for name, _ in header.properties]
        body = np.memmap(path, dtype=order + kinds.pop(), mode="r", offset=header.size,
                         shape=(n, len(index)))  # fmt: skip
        return np.take(body, [index.index(name) for name in names], axis=1).astype(np.float32)
    dtype = np.dtype([(name, order + kind) for name, kind in header.properties])
    table = np.memmap(path, dtype=dtype, mode="r", offset=header.size, shape=(n,))
    out = np.empty((n, len(names)), dtype=np.float32)
    for k, name in enumerate(names):
        out[:, k] = table[name]
    return out


def _read_header(path: Path) -> _Header:
    if not path.is_file():
        raise PlyFormatError(f"PLY file not found: {path}")
    with path.open("rb") as stream:
        if stream.read(4) not in (b"ply\n", b"ply\r"):
            raise PlyFormatError(f"{path}: not a PLY file (it does not start with 'ply')")
        stream.seek(0)
        head = stream.read(_MAX_HEADER)
    end = re.search(rb"end_header\r?\n", head)
    if end is None:
        raise PlyFormatError(f"{path}: not a valid PLY header (no 'end_header' line)")
    lines = head[: end.start()].decode("ascii", errors="replace").splitlines()
    fmt, count, first, props, comments = None, 0, None, [], []
    in_vertex = False
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "comment":
            comments.append(line.partition("comment")[2].strip())
        elif words[0] == "element" and len(words) == 3:
            first = words[1] if first is None else first
            in_vertex = words[1] == "vertex"
            if in_vertex:
                count = _int(words[2], path)
        elif words[0] == "property" and in_vertex and len(words) >= 3:
            kind = "list" if words[1] == "list" else _TYPES.get(words[1], "unknown")
            props.append((words[-1], kind))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PlyFormatError(f"{path}: not a valid PLY header (format {fmt!r})")
    if first is None or not any(w == "vertex" for w in _element_names(lines)):
        found = ", ".join(_element_names(lines)) or "none"
        raise PlyFormatError(f"{path}: no 'vertex' element (found: {found}); not a 3DGS PLY")
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    if any(kind == "unknown" for _, kind in props):
        order = None  # let plyfile name the bad type
    return _Header(end.end(), order, count, first == "vertex", props, comments)


def _element_names(lines: list[str]) -> list[str]:
    return [w[1] for line in lines if len(w := line.split()) == 3 and w[0] == "element"]


def _int(text: str, path: Path) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise PlyFormatError(f"{path}: not a valid PLY header (element count {text!r})")
    return value


def _check_float(kinds: dict[str, str], name: str, path: Path) -> None:
    kind = kinds.get(name)
    if kind is None:
        raise PlyFormatError(
            f"{path}: missing required property '{name}' (a 3DGS PLY needs "
            f"{', '.join(REQUIRED_PROPERTIES)})"
        )
    if kind not in ("f4", "f8"):
        raise PlyFormatError(
            f"{path}: property '{name}' has type {np.dtype(kind).name}, expected float or double"
        )


def rest_property_names(names: Iterable[str], path: Path) -> list[str]:
    """The ``f_rest_*`` names among a PLY vertex's property ``names``, in SH coefficient order.

    Raises:
        PlyFormatError: their count is not that of SH degree 0..3, or one is missing (``path``
            names the file).
    """
    indices = sorted(int(m.group(1)) for n in names if (m := re.fullmatch(r"f_rest_(\d+)", n)))
    if len(indices) not in _REST_COUNTS:
        raise PlyFormatError(
            f"{path}: found {len(indices)} f_rest_* properties; a 3DGS PLY has 0, 9, 24 or 45 "
            "(SH degree 0..3)"
        )
    if indices != list(range(len(indices))):
        missing = sorted(set(range(len(indices))) - set(indices))
        raise PlyFormatError(
            f"{path}: f_rest_* properties are not numbered 0..{len(indices) - 1} "
            f"(f_rest_{missing[0]} is missing)"
        )
    return [f"f_rest_{i}" for i in indices]


def _splats_from_block(block: F32, column: dict[str, int], rest: list[str]) -> SplatArrays:
    """Gaussians from ``[N, C]`` float32 property columns (``column``: name → index)."""
    n = len(block)

    def cols(names: list[str]) -> F32:
        first = column[names[0]]
        if [column[name] for name in names] == list(range(first, first + len(names))):
            return np.ascontiguousarray(block[:, first : first + len(names)])
        return np.ascontiguousarray(block[:, [column[name] for name in names]])

    k_rest = len(rest) // 3
    dc = cols(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3)
    if k_rest:
        higher = cols(rest).reshape(n, 3, k_rest).transpose(0, 2, 1)
        sh = np.ascontiguousarray(np.concatenate([dc, higher], axis=1))
    else:
        sh = dc
    return SplatArrays(
        means=cols(["x", "y", "z"]),
        quats=cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        log_scales=cols(["scale_0", "scale_1", "scale_2"]),
        logit_opacities=cols(["opacity"]).reshape(n),
        sh=sh,
    )


def _read_with_plyfile(path: Path, dc_only: bool) -> PlyArrays:
    from pipeline.export.ply import read_ply

    ply = read_ply(path, dc_only=dc_only)
    return PlyArrays(SplatArrays.from_splats(ply.splats), ply.comments)


def ply_property_names(sh_degree: int) -> list[str]:
    """The written property names, in order, for SH ``sh_degree`` (0..3)."""
    rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
        *(f"f_rest_{i}" for i in range(rest)),
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip


def write_ply_arrays(path: Path, splats: SplatArrays, comments: list[str] | None = None) -> int:
    """Write ``splats`` as a binary little-endian 3DGS PLY (atomically); returns the count.

    Every Gaussian is written as given (callers reject or drop non-finite rows first).
    """
    n = len(splats)
    names = ply_property_names(splats.sh_degree)
    rest = splats.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1)  # channel-major
    blocks = [splats.means, np.zeros((n, 3), np.float32), splats.sh[:, 0, :], rest,
              splats.logit_opacities.reshape(n, 1), splats.log_scales, splats.quats]  # fmt: skip
    body = np.concatenate(blocks, axis=1, dtype="<f4")
    lines = ["ply", "format binary_little_endian 1.0",
             *(f"comment {c}" for c in comments or []), f"element vertex {n}",
             *(f"property float {name}" for name in names), "end_header"]  # fmt: skip
    with atomic_path(path) as temp, temp.open("wb") as stream:
        stream.write(("\n".join(lines) + "\n").encode("ascii"))
        body.tofile(stream)
    return n


def read_arrays(path: Path, dc_only: bool = False) -> SplatArrays:
    """The Gaussians of a 3DGS PLY (the registry's reader)."""
    return read_ply_arrays(path, dc_only=dc_only).splats


def write_arrays(path: Path, splats: SplatArrays) -> int:
    """:func:`write_ply_arrays` without comments (the registry's writer)."""
    return write_ply_arrays(path, splats)
