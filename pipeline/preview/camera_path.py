"""Preview cameras: the orbit, the two stills, and nerfstudio's camera-path JSON.

Poses are OpenGL camera-to-world matrices (x right, y up, the camera looks along −z), as
nerfstudio's ``ns-render camera-path`` reads them; :meth:`PathCamera.to_render_camera` turns
one into the rasterizer's OpenCV world-to-camera form. Intrinsics follow ns-render: the field
of view is vertical, ``f = (H/2) / tan(fov/2)``, principal point at the image centre.

Framing: the subject is a cylinder about the up axis (:class:`SubjectCylinder`; a box counts
as its circumscribed cylinder). Each camera stands, along its viewing direction, at the
smallest distance from the centre at which the whole cylinder is inside both fields of view,
times ``margin``: at the orbit's elevation the subject fills the frame (the reference fitted
the sphere through the box corners, which left a flat subject small in the middle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from pipeline.preview.bounds import SceneBounds, SubjectCylinder
from pipeline.render.types import Camera

__all__ = [
    "OrbitConfig",
    "PathCamera",
    "camera_path_json",
    "framing_distance",
    "look_at_c2w",
    "orbit_cameras",
    "still_cameras",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class OrbitConfig:
    """The preview video's camera path and image size.

    Attributes:
        seconds: video length, 5..10 s.
        fps: frames per second (the frame count is ``round(seconds · fps)``).
        width: image width in pixels (even, 16..7680).
        height: image height in pixels (even, 16..4320).
        elevation_deg: camera elevation above the horizontal plane through the centre, 30..45°.
        sweep_deg: azimuth swept over the video, 270..360° (360 = a seamless loop).
        vfov_deg: vertical field of view (ns-render's ``fov``).
        margin: distance factor over the tightest fit of the bounding sphere (≥ 1).
    """

    seconds: float = 5.0
    fps: float = 30.0
    width: int = 1280
    height: int = 720
    elevation_deg: float = 35.0
    sweep_deg: float = 360.0
    vfov_deg: float = 60.0
    margin: float = 1.05

    def __post_init__(self) -> None:
        _check_range("seconds", self.seconds, 5.0, 10.0)
        _check_range("fps", self.fps, 1.0, 120.0)
        _check_range("elevation_deg", self.elevation_deg, 30.0, 45.0)
        _check_range("sweep_deg", self.sweep_deg, 270.0, 360.0)
        _check_range("vfov_deg", self.vfov_deg, 10.0, 120.0)
        _check_range("margin", self.margin, 1.0, 10.0)
        for name, value, limit in (("width", self.width, 7680), ("height", self.height, 4320)):
            if not (16 <= value <= limit and value % 2 == 0):
                raise ValueError(
                    f"{name} must be an even number of pixels in 16..{limit}, got {value}"
                )

    @property
    def frame_count(self) -> int:
        """Number of video frames."""
        return round(self.seconds * self.fps)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")


@dataclass(frozen=True)
class PathCamera:
    """One preview camera.

    Attributes:
        c2w: ``[4, 4]`` OpenGL camera-to-world (world frame of the splat being previewed).
        vfov_deg: vertical field of view, degrees.
        width: image width, pixels.
        height: image height, pixels.
    """

    c2w: F64
    vfov_deg: float
    width: int
    height: int

    @property
    def eye(self) -> F64:
        """``[3]`` camera centre, world frame."""
        return self.c2w[:3, 3]

    @property
    def focal_px(self) -> float:
        """Focal length in pixels, from the vertical field of view."""
        return 0.5 * self.height / math.tan(math.radians(self.vfov_deg) / 2.0)

    def to_render_camera(self, dtype: torch.dtype = torch.float32) -> Camera:
        """The rasterizer's camera (OpenCV world-to-camera, pixel-centre principal point)."""
        c2w_cv = self.c2w @ np.diag([1.0, -1.0, -1.0, 1.0])  # OpenGL → OpenCV axes
        rotation, eye = c2w_cv[:3, :3], c2w_cv[:3, 3]
        w2c = np.eye(4)
        w2c[:3, :3] = rotation.T
        w2c[:3, 3] = -rotation.T @ eye
        f = self.focal_px
        K = np.array([[f, 0.0, self.width / 2], [0.0, f, self.height / 2], [0.0, 0.0, 1.0]])
        return Camera(
            torch.as_tensor(w2c, dtype=dtype), torch.as_tensor(K, dtype=dtype),
            self.width, self.height,
        )  # fmt: skip


def look_at_c2w(eye: ArrayLike, target: ArrayLike, up_hints: ArrayLike) -> F64:
    """OpenGL camera-to-world ``[4, 4]`` at ``eye`` looking at ``target``.

    ``up_hints`` ``[k, 3]`` are tried in order: the first not within ~8° of the view axis
    becomes image up (the reference used world +z, then +y, then +x).
    """
    eye_v, target_v = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    back = eye_v - target_v
    if not np.linalg.norm(back) > 0:
        raise ValueError("camera eye and target coincide")
    z = back / np.linalg.norm(back)
    hints = np.asarray(up_hints, dtype=np.float64).reshape(-1, 3)
    hint = next((h for h in hints if abs(z @ h) <= 0.99 * np.linalg.norm(h)), None)
    if hint is None:
        raise ValueError("every up hint is parallel to the view direction")
    x = np.cross(hint, z)
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, np.cross(z, x), z, eye_v
    return c2w


def framing_distance(region: SubjectCylinder, direction: ArrayLike, config: OrbitConfig) -> float:
    """Distance from ``region.center`` along the unit ``direction`` (centre → eye) at which
    the whole cylinder is just inside both fields of view, times ``config.margin``.

    A point at ``center + q`` is in view when ``|q·x| ≤ tan(h/2)·(d − q·w)`` and
    ``|q·y| ≤ tan(v/2)·(d − q·w)`` (``x``, ``y`` the image axes, ``w = direction``), i.e.
    ``d ≥ q·w + |q·x| / tan(h/2)``; the bound is taken over the rim of a prism holding the
    cylinder, whose convex hull it is.
    """
    w = np.asarray(direction, dtype=np.float64)
    c2w = look_at_c2w(region.center + w, region.center, region.axes[::-1])
    tan_v = math.tan(math.radians(config.vfov_deg) / 2.0)
    tan_h = tan_v * config.width / config.height
    q = region.rim_points() - region.center
    lateral = np.maximum(np.abs(q @ c2w[:3, 0]) / tan_h, np.abs(q @ c2w[:3, 1]) / tan_v)
    return config.margin * float(np.max(q @ c2w[:3, 2] + lateral))


def orbit_cameras(target: SceneBounds | SubjectCylinder, config: OrbitConfig) -> list[PathCamera]:
    """The orbit: ``frame_count`` cameras circling ``target.up`` at constant elevation and
    distance (the subject cylinder fills the frame; a box is framed by its cylinder).

    A 360° sweep stops one step short of the start so the video loops without a repeated
    frame (as the reference); a shorter sweep covers its whole arc from first to last frame.
    """
    region = _cylinder(target)
    n = config.frame_count
    sweep = math.radians(config.sweep_deg)
    step = sweep / n if config.sweep_deg >= 360.0 else sweep / max(n - 1, 1)
    elevation = math.radians(config.elevation_deg)
    e1, e2, up = region.axes
    first = math.cos(elevation) * e1 + math.sin(elevation) * up
    distance = framing_distance(region, first, config)  # the same at every azimuth
    cameras = []
    for i in range(n):
        theta = i * step
        horizontal = math.cos(theta) * e1 + math.sin(theta) * e2
        direction = math.cos(elevation) * horizontal + math.sin(elevation) * up
        cameras.append(_camera_at(region, region.center + distance * direction, config))
    return cameras


def still_cameras(
    target: SceneBounds | SubjectCylinder, config: OrbitConfig
) -> dict[str, PathCamera]:
    """The reference's stills: ``top`` (straight down) and ``angle`` (45° up, 45° round).

    Directions as the reference: top from ``up``; angle from ``(1.2, 1.2, 1.2·√2)`` in the
    ``(e1, e2, up)`` frame. Each distance fits the subject cylinder tightly, like the orbit.
    """
    region = _cylinder(target)
    e1, e2, up = region.axes
    directions = {"top": up, "angle": (e1 + e2 + math.sqrt(2.0) * up) / 2.0}
    return {
        name: _camera_at(region, region.center + framing_distance(region, d, config) * d, config)
        for name, d in directions.items()
    }


def _cylinder(target: SceneBounds | SubjectCylinder) -> SubjectCylinder:
    return target.cylinder() if isinstance(target, SceneBounds) else target


def _camera_at(region: SubjectCylinder, eye: F64, config: OrbitConfig) -> PathCamera:
    """A camera at ``eye`` looking at the subject's centre, image up from the scene's up."""
    c2w = look_at_c2w(eye, region.center, region.axes[::-1])
    return PathCamera(c2w, config.vfov_deg, config.width, config.height)


def camera_path_json(cameras: list[PathCamera], seconds: float, fps: float) -> dict[str, Any]:
    """nerfstudio camera-path JSON for ``ns-render camera-path`` (v1.1.5 keys).

    ``camera_to_world`` is the OpenGL c2w flattened row-major (16 numbers); ``fov`` is the
    vertical field of view in degrees; ``render_time`` runs from 0 to ``seconds``.
    """
    if not cameras:
        raise ValueError("a camera path needs at least one camera")
    first = cameras[0]
    last = max(len(cameras) - 1, 1)
    return {
        "camera_type": "perspective",
        "render_height": float(first.height),
        "render_width": float(first.width),
        "seconds": float(seconds),
        "fps": float(fps),
        "is_cycle": False,
        "smoothness_value": 0.0,
        "camera_path": [
            {
                "camera_to_world": [float(v) for v in cam.c2w.reshape(-1)],
                "fov": float(cam.vfov_deg),
                "aspect": cam.width / cam.height,
                "render_time": i / last * seconds,
            }
            for i, cam in enumerate(cameras)
        ],
    }
