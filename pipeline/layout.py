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

__all__ = ["JobLayout", "frame_name"]


def frame_name(scan: str, index: int) -> str:
    """The file name of frame ``index`` of recording ``scan``: ``<scan>_<index:06d>.jpg``."""
    return f"{scan}_{index:06d}.jpg"


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
