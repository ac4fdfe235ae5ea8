"""Captures for watch-door tests: the Auki job layout, written at once or slowly."""

from __future__ import annotations

from pathlib import Path

FRAMES = "datasets/scan1/Frames.mp4"


def write_capture(folder: Path, video: bytes = b"frames-of-scan-1") -> Path:
    """A capture in the Auki job layout (the stub pipeline does not decode it)."""
    (folder / "datasets" / "scan1").mkdir(parents=True)
    (folder / FRAMES).write_bytes(video)
    model = folder / "refined" / "global" / "refined_sfm_combined"
    model.mkdir(parents=True)
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        (model / name).write_bytes(name.encode())
    return folder


def drop(inbox: Path, name: str, video: bytes = b"frames-of-scan-1") -> Path:
    """Writes a capture beside the inbox, then renames it in (as a careful uploader does)."""
    staging = inbox.parent / f".staging-{name}"
    write_capture(staging, video)
    target = inbox / name
    staging.rename(target)
    return target
