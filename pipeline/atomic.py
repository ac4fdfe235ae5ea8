"""Publishing files atomically: write under a temporary name, rename into place on success.

A reader (the node's uploader, a retry of the job) therefore sees either the complete file or
no file, never a partial one, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "partial_path", "remove_quietly"]


def partial_path(final: Path) -> Path:
    """The temporary name used while ``final`` is written (same folder, so rename is atomic)."""
    return final.with_name(f".{final.name}.partial")


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists; a missing file is not an error."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit it is renamed to ``final``.

    If the block raises (anything, including ``KeyboardInterrupt``), the temporary file is
    deleted and ``final`` is left as it was. The block must have created the file.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = partial_path(final)
    remove_quietly(temp)
    try:
        yield temp
        temp.replace(final)
    finally:
        remove_quietly(temp)
