"""Where the viewer's camera starts and how the fallback renderer's poses are named.

The first view is the first frame of the preview orbit (:func:`pipeline.preview.orbit_cameras`
on the same Gaussians and up vector), so the page opens on what the video opens on. Other
poses are named by yaw / pitch / distance around the subject's centre: yaw turns about the
scene's up from the subject's first horizontal axis ``e1`` towards ``e2``, pitch lifts above the
horizontal plane; yaw 0 at the orbit's elevation and distance is the orbit's first pose.

Poses are OpenGL camera-to-world matrices (x right, y up, looking along −z): three.js's own
camera convention, so the page uses them as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.preview.bounds import BoundsConfig, SubjectCylinder
from pipeline.preview.camera_path import OrbitConfig, PathCamera, look_at_c2w, orbit_cameras
from pipeline.preview.previews import subject_region
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats

__all__ = ["ViewCamera", "first_view"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ViewCamera:
    """The viewer's camera rig around one splat.

    Attributes:
        c2w: ``[4, 4]`` OpenGL camera-to-world of the first view.
        vfov_deg: vertical field of view, degrees.
        target: ``[3]`` orbit centre (the subject region's centre), world frame.
        axes: ``[3, 3]`` rows ``(e1, e2, up)`` of the subject region, world frame.
        distance: first view's distance from ``target``, world units.
        pitch_deg: first view's elevation above the horizontal plane, degrees (yaw is 0).
        width, height: the preview's image size (the first view's aspect ratio).
    """

    c2w: F64
    vfov_deg: float
    target: F64
    axes: F64
    distance: float
    pitch_deg: float
    width: int
    height: int

    @property
    def up(self) -> F64:
        return np.asarray(self.axes[2], dtype=np.float64)

    def pose(self, yaw_deg: float, pitch_deg: float, distance: float) -> F64:
        """``[4, 4]`` OpenGL camera-to-world at that yaw / pitch / distance from ``target``."""
        yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
        e1, e2, up = self.axes
        horizontal = math.cos(yaw) * e1 + math.sin(yaw) * e2
        direction = math.cos(pitch) * horizontal + math.sin(pitch) * up
        return look_at_c2w(self.target + distance * direction, self.target, self.axes[::-1])

    def path_camera(self, c2w: ArrayLike, width: int, height: int) -> PathCamera:
        """A renderable camera with this rig's field of view at ``width`` × ``height``."""
        return PathCamera(np.asarray(c2w, dtype=np.float64), self.vfov_deg, width, height)

    def transformed(self, rotation: ArrayLike) -> ViewCamera:
        """The same rig after rotating the world by ``rotation`` ``[3, 3]`` (x' = R x)."""
        R = np.asarray(rotation, dtype=np.float64)
        R4 = np.eye(4)
        R4[:3, :3] = R
        return ViewCamera(
            c2w=R4 @ self.c2w, vfov_deg=self.vfov_deg, target=R @ self.target,
            axes=self.axes @ R.T, distance=self.distance, pitch_deg=self.pitch_deg,
            width=self.width, height=self.height,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """For the page: the matrix row-major, vectors as lists, angles in degrees."""
        return {
            "c2w": [float(v) for v in self.c2w.reshape(-1)],
            "vfov_deg": self.vfov_deg,
            "target": [float(v) for v in self.target],
            "up": [float(v) for v in self.up],
            "axes": [[float(v) for v in row] for row in self.axes],
            "distance": self.distance,
            "yaw_deg": 0.0,
            "pitch_deg": self.pitch_deg,
            "aspect": self.width / self.height,
        }


def first_view(
    splats: Splats,
    up: ArrayLike | SceneFrame,
    orbit: OrbitConfig | None = None,
    bounds_config: BoundsConfig | None = None,
) -> ViewCamera:
    """The preview orbit's first pose for ``splats`` (as :func:`render_preview` frames them).

    Args:
        splats: the Gaussians, in the frame the camera is wanted in.
        up: the scene frame (from the PLY header) or just its ``[3]`` up vector, in that
            frame, as the preview step gets it.
        orbit: the preview's orbit settings (default: the pipeline's).
        bounds_config: how the subject's box is measured when ``up`` is only a vector
            (default: the preview's).

    Raises:
        ValueError: no Gaussian has a finite position, or ``up`` is zero.
    """
    cfg = orbit or OrbitConfig()
    region: SubjectCylinder = subject_region(splats, up, bounds_config)
    first: PathCamera = orbit_cameras(region, cfg)[0]
    distance = float(np.linalg.norm(first.eye - region.center))
    return ViewCamera(
        c2w=first.c2w, vfov_deg=cfg.vfov_deg, target=region.center, axes=region.axes,
        distance=distance, pitch_deg=cfg.elevation_deg, width=cfg.width, height=cfg.height,
    )  # fmt: skip
