"""3DGS PLY files: the writer for ``splat.ply`` / ``splat_rot.ply`` and a tolerant reader.

Written layout (nerfstudio's ``ns-export gaussian-splat``, INRIA 3DGS): binary little-endian,
one ``vertex`` element, all ``float`` properties in the order
``x y z nx ny nz f_dc_0..2 f_rest_0..(3K-4) opacity scale_0..2 rot_0..3`` (``K`` SH
coefficients per channel; 62 properties for degree 3). Normals are zeros, ``f_rest`` is
channel-major (every red coefficient, then green, then blue), opacity is the logit, scales are
natural-log, quaternions ``(w, x, y, z)`` as stored.

The header records the vertical axis as nerfstudio does (``comment Vertical Axis: z``) plus
the exact up vector (``comment Up Vector: ux uy uz``), so ``pipeline preview`` can orbit any of
our files the right way up. Files from a job also record the observed region of the scene
frame (:class:`~pipeline.scene_frame.SceneFrame`: ``Scene Center: x y z``, ``Radius: r``,
``Half Height: h``, ``Up Rule: plane|vertical|fallback``), which the preview orbits and the
viewer starts from.

The reader accepts other trainers' files: any SH degree 0..3, extra or re-ordered properties,
ASCII or either binary byte order, float or double. It rejects everything else with a
:class:`~pipeline.errors.PlyFormatError` naming the file and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plyfile
import torch
from numpy.typing import ArrayLike, NDArray

from pipeline.atomic import atomic_path
from pipeline.errors import PlyFormatError
from pipeline.formats.ply import REQUIRED_PROPERTIES, rest_property_names
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats

__all__ = [
    "REQUIRED_PROPERTIES",
    "PlySplats",
    "finite_mask",
    "ply_property_names",
    "read_ply",
    "up_comments",
    "write_ply",
]

_FLOAT_TYPES = {"f4", "f8"}
_AXIS_NAMES = ("x", "y", "z")


@dataclass
class PlySplats:
    """What :func:`read_ply` returns.

    Attributes:
        splats: the Gaussians (float32 tensors on the CPU), in the file's frame.
        up: ``[3]`` unit up vector recorded in the header, or ``None`` if there is none.
        comments: the header comments, in order.
        frame: the scene frame recorded in the header, or ``None`` if it is incomplete.
    """

    splats: Splats
    up: NDArray[np.float64] | None
    comments: list[str] = field(default_factory=list)
    frame: SceneFrame | None = None


def ply_property_names(sh_degree: int) -> list[str]:
    """The written property names, in order, for SH ``sh_degree`` (0..3)."""
    rest = 3 * ((sh_degree + 1) ** 2 - 1)
    return [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
        *(f"f_rest_{i}" for i in range(rest)),
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip


def finite_mask(splats: Splats) -> torch.Tensor:
    """``[N]`` bool: Gaussians whose every parameter is finite."""
    mask = torch.ones(len(splats), dtype=torch.bool, device=splats.means.device)
    for t in splats.tensors():
        finite = torch.isfinite(t.detach())
        mask &= finite.flatten(1).all(dim=1) if finite.dim() > 1 else finite
    return mask


def up_comments(up: ArrayLike) -> list[str]:
    """Header comments recording ``up`` (``[3]``, any length): nearest axis and exact vector."""
    u = _unit(np.asarray(up, dtype=np.float64))
    if u is None:
        raise ValueError(f"up vector must be finite and non-zero, got {up!r}")
    k = int(np.argmax(np.abs(u)))
    axis = ("" if u[k] > 0 else "-") + _AXIS_NAMES[k]
    return [f"Vertical Axis: {axis}", "Up Vector: " + " ".join(f"{c:.9g}" for c in u)]


def write_ply(
    path: Path,
    splats: Splats,
    up: ArrayLike | None = None,
    comments: Sequence[str] = (),
    text: bool = False,
) -> int:
    """Write ``splats`` as a 3DGS PLY, dropping Gaussians with any non-finite value.

    Args:
        path: destination; written under a temporary name and renamed when complete.
        splats: the Gaussians, in the frame the file should be in.
        up: ``[3]`` up vector in that frame, recorded in the header; ``None`` records none.
        comments: extra header comments (ASCII), written first.
        text: write ASCII instead of binary little-endian (for tests and debugging).

    Returns:
        The number of Gaussians written.
    """
    table = _property_table(splats)
    values = table.view("<f4").reshape(len(table), len(table.dtype.names or ()))
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        table = table[finite]
    element = plyfile.PlyElement.describe(table, "vertex")
    header = [*comments, *(up_comments(up) if up is not None else [])]
    data = plyfile.PlyData([element], text=text, byte_order="<", comments=header)
    with atomic_path(path) as temp:
        data.write(str(temp))
    return len(table)


def _property_table(splats: Splats) -> NDArray[np.void]:
    """The splats as a structured array with one ``<f4`` field per written property."""
    n, names = len(splats), ply_property_names(splats.sh_degree)

    def f32(t: torch.Tensor) -> NDArray[np.float32]:
        values = t.detach().cpu().to(torch.float32).numpy()
        return values.reshape(n, int(np.prod(values.shape[1:])))

    sh = splats.sh.detach()
    rest = f32(sh[:, 1:, :].transpose(1, 2))  # channel-major
    blocks = [f32(splats.means), np.zeros((n, 3), np.float32), f32(sh[:, 0, :]), rest,
              f32(splats.logit_opacities), f32(splats.log_scales), f32(splats.quats)]  # fmt: skip
    columns = np.concatenate(blocks, axis=1, dtype="<f4")
    dtype = np.dtype([(name, "<f4") for name in names])
    return columns.view(dtype).reshape(n)


def read_ply(path: Path, dc_only: bool = False) -> PlySplats:
    """Read a 3DGS PLY written by this project or by another trainer.

    Args:
        path: the file.
        dc_only: ignore ``f_rest_*`` (degree-0 result), e.g. for ``.splat`` conversion, which
            keeps only the DC colour; then an odd ``f_rest`` count is not an error.

    Raises:
        PlyFormatError: missing file, not a PLY, truncated data, no ``vertex`` element, a
            required property missing or not float/double, or an ``f_rest`` count that matches
            no SH degree.
    """
    ply = _parse(path)
    vertex = _vertex_element(ply, path)
    names = {p.name: p for p in vertex.properties}
    for name in REQUIRED_PROPERTIES:
        _check_float_property(names, name, path, required=True)
    rest_names = [] if dc_only else rest_property_names(names, path)
    for name in rest_names:
        _check_float_property(names, name, path, required=True)
    splats = _splats_from_vertex(vertex, rest_names)
    comments = list(ply.comments)
    frame = SceneFrame.from_header_comments(comments)
    return PlySplats(splats=splats, up=_parse_up(comments), comments=comments, frame=frame)


def _parse(path: Path) -> plyfile.PlyData:
    if not path.is_file():
        raise PlyFormatError(f"PLY file not found: {path}")
    try:
        with path.open("rb") as stream:
            if stream.read(4) not in (b"ply\n", b"ply\r"):
                raise PlyFormatError(f"{path}: not a PLY file (it does not start with 'ply')")
            stream.seek(0)
            # Binary data is memory-mapped (copy-on-write): plyfile's other binary path
            # reads row by row in Python. The mapping checks the file is long enough.
            return plyfile.PlyData.read(stream, mmap="c")
    except plyfile.PlyHeaderParseError as exc:
        raise PlyFormatError(f"{path}: not a valid PLY header ({exc})") from exc
    except (plyfile.PlyParseError, ValueError, EOFError, IndexError, UnicodeError) as exc:
        raise PlyFormatError(f"{path}: malformed or truncated PLY data ({exc})") from exc


def _vertex_element(ply: plyfile.PlyData, path: Path) -> plyfile.PlyElement:
    try:
        return ply["vertex"]
    except KeyError:
        found = ", ".join(e.name for e in ply.elements) or "none"
        raise PlyFormatError(
            f"{path}: no 'vertex' element (found: {found}); not a 3DGS PLY"
        ) from None


def _check_float_property(
    names: dict[str, plyfile.PlyProperty], name: str, path: Path, required: bool
) -> None:
    prop = names.get(name)
    if prop is None:
        if required:
            raise PlyFormatError(
                f"{path}: missing required property '{name}' (a 3DGS PLY needs "
                f"{', '.join(REQUIRED_PROPERTIES)})"
            )
        return
    if isinstance(prop, plyfile.PlyListProperty):
        raise PlyFormatError(f"{path}: property '{name}' is a list, expected float or double")
    if prop.val_dtype.lstrip("<>=|") not in _FLOAT_TYPES:
        kind = np.dtype(prop.val_dtype).name
        raise PlyFormatError(f"{path}: property '{name}' has type {kind}, expected float or double")


def _splats_from_vertex(vertex: plyfile.PlyElement, rest_names: list[str]) -> Splats:
    def stack(columns: Sequence[str]) -> torch.Tensor:
        values = np.stack([np.asarray(vertex[c], dtype=np.float32) for c in columns], axis=1)
        return torch.from_numpy(values.reshape(len(vertex.data), len(columns)))

    n = len(vertex.data)
    dc = stack(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3)
    k_rest = len(rest_names) // 3
    rest = stack(rest_names).reshape(n, 3, k_rest).transpose(1, 2) if k_rest else dc[:, :0]
    return Splats(
        means=stack(["x", "y", "z"]),
        quats=stack(["rot_0", "rot_1", "rot_2", "rot_3"]),
        log_scales=stack(["scale_0", "scale_1", "scale_2"]),
        logit_opacities=stack(["opacity"]).reshape(n),
        sh=torch.cat([dc, rest], dim=1).contiguous(),
    )


def _parse_up(comments: list[str]) -> NDArray[np.float64] | None:
    """The up vector from ``Up Vector:`` or, failing that, ``Vertical Axis:`` comments."""
    for comment in comments:
        if m := re.fullmatch(r"\s*Up Vector:\s*(\S+)\s+(\S+)\s+(\S+)\s*", comment):
            try:
                vector = _unit(np.array([float(v) for v in m.groups()]))
            except ValueError:
                vector = None
            if vector is not None:
                return vector
    for comment in comments:
        if m := re.fullmatch(r"\s*Vertical Axis:\s*([+-]?)([xyzXYZ])\s*", comment):
            axis = np.zeros(3)
            axis[_AXIS_NAMES.index(m.group(2).lower())] = -1.0 if m.group(1) == "-" else 1.0
            return axis
    return None


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64] | None:
    norm = float(np.linalg.norm(v))
    if v.shape != (3,) or not np.isfinite(norm) or norm == 0.0:
        return None
    return v / norm
