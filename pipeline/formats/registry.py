"""Splat formats by file extension: what ``convert`` can read and write.

Each format's module is imported only when a file of that format is read or written, so
converting PLY to ``.splat`` never loads the SOG encoder (Pillow) and nothing here loads torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.formats.arrays import SplatArrays

__all__ = [
    "FORMATS",
    "SplatFormat",
    "UnsupportedFormatError",
    "format_for",
    "read_splats",
    "write_splats",
]


class UnsupportedFormatError(InputError):
    """A file name whose extension names no format we read or write."""


@dataclass(frozen=True)
class SplatFormat:
    """One file format.

    Attributes:
        extension: lower-case, with the dot (``".sog"``).
        name: human name for messages.
        module: ``pipeline.formats`` module with ``read_arrays(path, dc_only)`` and
            ``write_arrays(path, splats) -> int``.
        max_sh_degree: the highest SH degree the format stores (0: DC colour only).
        stores_non_finite: whether NaN / infinite parameters can be written (``.splat``, as
            ply2splat does); other formats reject them.
    """

    extension: str
    name: str
    module: str
    max_sh_degree: int
    stores_non_finite: bool = False

    def reader(self) -> Callable[[Path, bool], SplatArrays]:
        return importlib.import_module(self.module).read_arrays  # type: ignore[no-any-return]

    def writer(self) -> Callable[[Path, SplatArrays], int]:
        return importlib.import_module(self.module).write_arrays  # type: ignore[no-any-return]


FORMATS: dict[str, SplatFormat] = {
    f.extension: f
    for f in (
        SplatFormat(".ply", "3DGS PLY", "pipeline.formats.ply", 3),
        SplatFormat(".splat", "antimatter15 .splat", "pipeline.formats.splat", 0, True),
        SplatFormat(".sog", "PlayCanvas SOG", "pipeline.formats.sog", 3),
        SplatFormat(".spz", "Niantic SPZ", "pipeline.formats.spz", 3),
    )
}


def format_for(path: Path) -> SplatFormat:
    """The format of ``path`` by its extension (case-insensitive).

    Raises:
        UnsupportedFormatError: listing the supported extensions.
    """
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        supported = ", ".join(FORMATS)
        shown = path.suffix or "no extension"
        raise UnsupportedFormatError(
            f"{path}: unsupported file type ({shown}); use one of {supported}"
        )
    return found


def read_splats(path: Path, dc_only: bool = False) -> SplatArrays:
    """Read any supported file; ``dc_only`` lets a reader skip SH bands 1–3."""
    return format_for(path).reader()(path, dc_only)


def write_splats(path: Path, splats: SplatArrays, source: Path | None = None) -> int:
    """Write ``splats`` in the format of ``path``'s extension; returns the count written.

    Raises:
        InputError: NaN or infinite parameters for a format that cannot store them (naming
            ``source``, the file they came from, when given).
    """
    fmt = format_for(path)
    if not fmt.stores_non_finite:
        bad = splats.non_finite_rows()
        if bad.size:
            origin = source or path
            raise InputError(
                f"{origin}: {bad.size} Gaussians have NaN or infinite parameters (first: "
                f"Gaussian {int(bad[0])}); {fmt.name} cannot store them, nothing was written"
            )
    return fmt.writer()(path, splats.with_sh_degree(fmt.max_sh_degree))
