"""A complete synthetic job folder: recording, COLMAP model and manifest of a known scene.

:func:`make_synthetic_job` renders the room of :mod:`pipeline.synthetic.scene` from an orbit,
encodes the frames as ``datasets/<scan>/Frames.mp4`` and writes the matching COLMAP model
(``cameras/images/points3D`` and, by default, COLMAP 3.12 ``rigs/frames``) with image names
``<scan>_<index:06d>.jpg`` = frame ``index`` of the video, plus a refined manifest like the
reconstruction server's. The COLMAP world has gravity along +y (OpenCV-style y-down).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.colmap import (
    ColmapCamera,
    ColmapModel,
    model_by_name,
    write_model,
)
from pipeline.contract import JobLayout, frame_name
from pipeline.render.types import Camera, Gaussians, RenderSettings
from pipeline.synthetic.render import FrameRenderer
from pipeline.synthetic.scene import build_room
from pipeline.synthetic.sfm import build_sfm_model
from pipeline.video import encode_video

__all__ = ["SyntheticCameraModel", "SyntheticConfig", "SyntheticScene", "make_synthetic_job"]

log = logging.getLogger(__name__)

SyntheticCameraModel = Literal[
    "SIMPLE_PINHOLE",
    "PINHOLE",
    "SIMPLE_RADIAL",
    "RADIAL",
    "OPENCV",
    "FULL_OPENCV",
    "OPENCV_FISHEYE",
    "SIMPLE_RADIAL_FISHEYE",
    "RADIAL_FISHEYE",
    "SIMPLE_FISHEYE",
    "FISHEYE",
]

_INTRINSIC_NAMES = ("f", "fx", "fy", "cx", "cy")
# Mild, realistic lens coefficients per model (COLMAP parameter names).
_LENS: dict[str, dict[str, float]] = {
    "SIMPLE_RADIAL": {"k": -0.06},
    "RADIAL": {"k1": -0.06, "k2": 0.01},
    "OPENCV": {"k1": -0.06, "k2": 0.01, "p1": 0.001, "p2": -0.0015},
    "FULL_OPENCV": {"k1": -0.06, "k2": 0.01, "p1": 0.001, "p2": -0.0015, "k3": 0.002, "k4": 0.01},
    "OPENCV_FISHEYE": {"k1": 0.02, "k2": -0.01, "k3": 0.001},
    "SIMPLE_RADIAL_FISHEYE": {"k": 0.02},
    "RADIAL_FISHEYE": {"k1": 0.02, "k2": -0.01},
}


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic job.

    Attributes:
        views: frames in the recording, evenly spaced on one orbit.
        width: frame width in pixels (even: the video is yuv420p).
        height: frame height in pixels (even).
        gaussians: approximate number of ground-truth Gaussians.
        points: SfM points sampled from the Gaussian centres (before dropping points seen in
            fewer than two images).
        seed: seeds everything (scene, cameras, noise, ids).
        scan: recording name; also the image name prefix.
        camera_model: COLMAP model of the (single) camera; distorted models get mild lens
            coefficients and distorted frames.
        hfov_deg: horizontal field of view of the pinhole part, degrees.
        orbit_radius: camera distance from the room's vertical axis, metres.
        orbit_height: mean camera height above the floor, metres (varies ±25 % along the orbit).
        fps: frame rate of the recording.
        crf: x264 quality of the recording (lower is better; 12 is near lossless).
        lens: the camera's lens coefficients in COLMAP order (e.g. ``k1, k2, p1, p2`` for
            ``OPENCV``) instead of the mild defaults.
        unregistered_every: leave every N-th frame out of the model (like frames SfM could not
            register); 0 registers every frame.
        write_rigs: also write COLMAP 3.12 ``rigs.bin``/``frames.bin``.
        refinement_time: timestamp of the (pretend) global refinement, the suffix of the
            manifest and COLMAP data names (``refined_manifest_<time>``).
    """

    views: int = 40
    width: int = 160
    height: int = 120
    gaussians: int = 2400
    points: int = 1500
    seed: int = 0
    scan: str = "2025-01-01_10-00-00"
    camera_model: SyntheticCameraModel = "PINHOLE"
    lens: tuple[float, ...] | None = None
    hfov_deg: float = 65.0
    orbit_radius: float = 3.0
    orbit_height: float = 1.0
    fps: float = 10.0
    crf: int = 12
    unregistered_every: int = 0
    write_rigs: bool = True
    refinement_time: str = "2025-01-02_03-04-05"

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 16 or self.height < 16:
            raise ValueError(f"frame size must be even and ≥ 16, got {self.width}x{self.height}")
        if self.views < 3:
            raise ValueError(f"need at least 3 views, got {self.views}")
        if self.unregistered_every == 1 or self.unregistered_every < 0:
            raise ValueError("unregistered_every must be 0 or ≥ 2")
        names = _lens_names(self.camera_model)
        if self.lens is not None and len(self.lens) != len(names):
            raise ValueError(
                f"{self.camera_model} takes {len(names)} lens coefficients "
                f"({', '.join(names)}), got {len(self.lens)}"
            )


@dataclass
class SyntheticScene:
    """What :func:`make_synthetic_job` made, including the ground truth.

    Attributes:
        layout: the job folder.
        config: the settings used.
        gaussians: ground-truth Gaussians (float32, SH degree 0), COLMAP world.
        cameras: the pinhole camera of every frame of the video (for distorted models, the
            pinhole camera with the same pose and focal lengths, at the frame's size).
        frames: ``[F, H, W, 3]`` uint8 frames as rendered (before video compression).
        model: the COLMAP model written.
        registered: frame indices that are in the model, ascending.
        manifest: the refined manifest written to ``layout.manifest_path``.
        manifest_name: the manifest's domain data name, ``refined_manifest_<refinement_time>``.
    """

    layout: JobLayout
    config: SyntheticConfig
    gaussians: Gaussians
    cameras: list[Camera]
    frames: NDArray[np.uint8]
    model: ColmapModel
    registered: list[int]
    manifest: dict[str, Any]
    manifest_name: str

    def image_name(self, index: int) -> str:
        return frame_name(self.config.scan, index)


def make_synthetic_job(job_root: Path, config: SyntheticConfig | None = None) -> SyntheticScene:
    """Write a synthetic job into ``job_root`` (created if needed) and return its ground truth."""
    config = config or SyntheticConfig()
    started = time.monotonic()
    layout = JobLayout(job_root)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    room = build_room(config.gaussians, generator)
    camera = _colmap_camera(config)
    poses = _orbit(config)
    frames = _record(layout, config, room.gaussians, camera, poses)
    registered = [i for i in range(config.views) if not _skipped(i, config)]
    model = build_sfm_model(
        config.scan, config.points, config.write_rigs, camera, poses, registered, room, rng
    )
    write_model(model, layout.model_dir)
    manifest = _manifest(config)
    layout.manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    log.info(
        "synthetic job in %s: %d frames, %d Gaussians, %d points (%.1f s)",
        job_root,
        config.views,
        len(room.gaussians),
        len(model.points3d),
        time.monotonic() - started,
    )
    return SyntheticScene(
        layout=layout,
        config=config,
        gaussians=room.gaussians,
        cameras=[_pinhole_camera(camera, pose) for pose in poses],
        frames=frames,
        model=model,
        registered=registered,
        manifest=manifest,
        manifest_name=f"refined_manifest_{config.refinement_time}",
    )


def _record(
    layout: JobLayout,
    config: SyntheticConfig,
    gaussians: Gaussians,
    camera: ColmapCamera,
    poses: list[NDArray[np.float64]],
) -> NDArray[np.uint8]:
    """Render every frame and encode them as the scan's ``Frames.mp4``; returns the frames."""
    renderer = FrameRenderer(gaussians, camera, RenderSettings(sh_degree=0))
    frames = np.stack([renderer.render(torch.from_numpy(pose)) for pose in poses])
    video = layout.recording(config.scan)
    video.parent.mkdir(parents=True, exist_ok=True)
    encode_video(video, frames, (config.width, config.height), config.fps, crf=config.crf)
    return frames


def _skipped(index: int, config: SyntheticConfig) -> bool:
    every = config.unregistered_every
    return every > 0 and index % every == every - 1


def _colmap_camera(config: SyntheticConfig) -> ColmapCamera:
    """Camera 1 of ``config.camera_model``, principal point slightly off centre like a real one."""
    f = 0.5 * config.width / math.tan(math.radians(config.hfov_deg) / 2)
    values = {
        "f": f,
        "fx": f,
        "fy": f * 1.002,
        "cx": config.width / 2 + 0.7,
        "cy": config.height / 2 - 0.4,
        **_LENS.get(config.camera_model, {}),
    }
    spec = model_by_name(config.camera_model)
    if config.lens is not None:
        values.update(zip(_lens_names(config.camera_model), config.lens, strict=True))
    params = tuple(float(values.get(name, 0.0)) for name in spec.params)
    return ColmapCamera(1, spec.name, config.width, config.height, params)


def _lens_names(camera_model: str) -> tuple[str, ...]:
    """The model's distortion parameter names (everything after focal lengths and centre)."""
    return tuple(
        name for name in model_by_name(camera_model).params if name not in _INTRINSIC_NAMES
    )


def _orbit(config: SyntheticConfig) -> list[NDArray[np.float64]]:
    """World → camera ``[4, 4]`` of each frame: one turn around the room, looking inwards."""
    target = np.array([0.0, -0.35, 0.0])
    poses = []
    for i in range(config.views):
        angle = 2 * math.pi * i / config.views
        height = config.orbit_height * (1 + 0.25 * math.sin(3 * angle + 0.5))
        eye = np.array(
            [config.orbit_radius * math.cos(angle), -height, config.orbit_radius * math.sin(angle)]
        )
        poses.append(_look_at(eye, target))
    return poses


def _look_at(eye: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """OpenCV world → camera looking from ``eye`` at ``target``, image up = world −y."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = -rotation @ eye
    return pose


def _pinhole_camera(camera: ColmapCamera, pose: NDArray[np.float64]) -> Camera:
    fx, fy = camera.param("fx"), camera.param("fy")
    K = torch.tensor([[fx, 0, camera.param("cx")], [0, fy, camera.param("cy")], [0, 0, 1]])
    return Camera(
        torch.from_numpy(pose).to(torch.float32), K.to(torch.float32), camera.width, camera.height
    )


def _manifest(config: SyntheticConfig) -> dict[str, Any]:
    """A refined manifest in the reconstruction server's camelCase shape (protocol §3.11)."""
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"splatter-node-synthetic/{config.seed}")
    job_id = str(uuid.uuid5(namespace, "job"))
    stamp = _iso(config.refinement_time)
    return {
        "portals": [],
        "reconstructionServerVersion": "splatter-node synthetic",
        "jobStatus": "refined",
        "jobProgress": 100,
        "jobStatusDetails": "synthetic scene",
        "updatedAt": stamp,
        "createdAt": stamp,
        "jobDuration": 0,
        "jobID": job_id,
        "jobName": f"job_{job_id}",
        "reconstructionServerURL": None,
        "domainID": str(uuid.uuid5(namespace, "domain")),
        "domainServerURL": "http://127.0.0.1",
        "processingType": "global_refinement",
        "dataIDs": [f"refined_scan_{config.scan}"],
    }


def _iso(refinement_time: str) -> str:
    """``2025-01-02_03-04-05`` → ``2025-01-02T03:04:05Z``."""
    day, _, clock = refinement_time.partition("_")
    return f"{day}T{clock.replace('-', ':')}Z"
