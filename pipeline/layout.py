"""Where things live in a job folder (the reference splatter node's layout, protocol §3.4).

::

    <job_root>/
      datasets/<scan>/Frames.mp4                 one recording per scan (input)
      refined/global/refined_sfm_combined/       COLMAP model: cameras, images, points3D,
                                                 (rigs, frames).bin (input)
      refined/global/refined_manifest.json       the input manifest (written by the synthetic
                                                 job; the node reads it from the domain)
      Frames/<scan>_<index:06d>.jpg              extracted frames, all scans in one folder
      refined/nerfstudio-data/                   transforms.json + sparse_pc.ply (nerfstudio)
      refined/splatter/                          splat.ply, splat_rot.ply, splat_rot.splat, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UnsafeImageNameError

__all__ = ["JobLayout", "check_image_name", "frame_name", "frame_path"]


def frame_name(scan: str, index: int) -> str:
    """The file name of frame ``index`` of recording ``scan``: ``<scan>_<index:06d>.jpg``."""
    return f"{scan}_{index:06d}.jpg"


def check_image_name(name: str) -> str:
    """``name`` when it is a relative path that stays inside ``Frames/``, else an error.

    Image names come from ``images.bin`` (domain data, untrusted) and are joined to ``Frames/``
    to read and write frames: an absolute name, a ``.``/``..`` or empty part, a backslash or a
    control character could reach another file. Sub-folders (``a/b.jpg``) are fine.

    Raises:
        UnsafeImageNameError: naming the image.
    """
    parts = name.split("/")
    if (
        any(part in ("", ".", "..") for part in parts)
        or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    ):
        raise UnsafeImageNameError(
            f"image name {name[:200]!r} in the COLMAP model is not a relative path inside "
            "Frames/ (absolute paths, '..', empty parts, backslashes and control characters "
            "are refused)"
        )
    return name


def frame_path(frames_dir: Path, name: str) -> Path:
    """``frames_dir / name`` for a model image name, once :func:`check_image_name` passed."""
    return frames_dir / check_image_name(name)


@dataclass(frozen=True)
class JobLayout:
    """Paths inside one job folder."""

    root: Path

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def video(self, scan: str) -> Path:
        """The recording of ``scan``."""
        return self.datasets_dir / scan / "Frames.mp4"

    def scans(self) -> list[str]:
        """Scan names: the folders under ``datasets/``, sorted."""
        if not self.datasets_dir.is_dir():
            return []
        return sorted(p.name for p in self.datasets_dir.iterdir() if p.is_dir())

    @property
    def frames_dir(self) -> Path:
        return self.root / "Frames"

    @property
    def model_dir(self) -> Path:
        return self.root / "refined" / "global" / "refined_sfm_combined"

    @property
    def manifest_path(self) -> Path:
        return self.root / "refined" / "global" / "refined_manifest.json"

    @property
    def nerfstudio_dir(self) -> Path:
        return self.root / "refined" / "nerfstudio-data"

    @property
    def splatter_dir(self) -> Path:
        return self.root / "refined" / "splatter"
