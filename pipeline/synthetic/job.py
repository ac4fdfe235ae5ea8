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
    INVALID_POINT3D_ID,
    SENSOR_CAMERA,
    ColmapCamera,
    ColmapFrame,
    ColmapImage,
    ColmapModel,
    ColmapRig,
    Points3D,
    model_by_name,
    rotmat_to_qvec,
    write_model,
)
from pipeline.colmap.distortion import project
from pipeline.layout import JobLayout, frame_name
from pipeline.render.sh import sh_to_rgb
from pipeline.render.types import Camera, Gaussians, RenderSettings
from pipeline.synthetic.render import FrameRenderer
from pipeline.synthetic.scene import SPHERES, SceneParts, build_room
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
]

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
    renderer = FrameRenderer(room.gaussians, camera, RenderSettings(sh_degree=0))
    frames = np.stack([renderer.render(torch.from_numpy(pose)) for pose in poses])
    layout.video(config.scan).parent.mkdir(parents=True, exist_ok=True)
    encode_video(
        layout.video(config.scan), frames, (config.width, config.height), config.fps, crf=config.crf
    )
    registered = [i for i in range(config.views) if not _skipped(i, config)]
    model = _build_model(config, camera, poses, registered, room, rng)
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
    params = tuple(float(values.get(name, 0.0)) for name in spec.params)
    if config.lens is not None:
        intrinsic = sum(name in ("f", "fx", "fy", "cx", "cy") for name in spec.params)
        if len(config.lens) != spec.num_params - intrinsic:
            raise ValueError(
                f"{spec.name} takes {spec.num_params - intrinsic} lens "
                f"coefficients ({', '.join(spec.params[intrinsic:])}), "
                f"got {len(config.lens)}"
            )
        params = params[:intrinsic] + tuple(float(c) for c in config.lens)
    return ColmapCamera(1, spec.name, config.width, config.height, params)


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


def _build_model(
    config: SyntheticConfig,
    camera: ColmapCamera,
    poses: list[NDArray[np.float64]],
    registered: list[int],
    room: SceneParts,
    rng: np.random.Generator,
) -> ColmapModel:
    # Shuffled ids: image id order differs from name order, as in real models.
    shuffled = rng.permutation(len(registered)) + 1
    image_ids = {index: int(i) for index, i in zip(registered, shuffled, strict=True)}
    xyz, rgb, sphere = _sample_points(config, room, rng)
    observations = {index: _observe(camera, poses[index], xyz, sphere, rng) for index in registered}
    points, keypoints = _tracks(xyz, rgb, observations, image_ids, rng)
    images = {}
    for index in sorted(registered, key=lambda i: image_ids[i]):
        image_id = image_ids[index]
        rotation, translation = poses[index][:3, :3], poses[index][:3, 3]
        points2d, point_ids = keypoints[index]
        name = frame_name(config.scan, index)
        qvec = rotmat_to_qvec(rotation)
        images[image_id] = ColmapImage(
            image_id, qvec, translation.copy(), 1, name, points2d, point_ids
        )
    rigs, frames = _rigs_and_frames(images) if config.write_rigs else (None, None)
    return ColmapModel({1: camera}, images, points, rigs, frames)


def _sample_points(
    config: SyntheticConfig, room: SceneParts, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.uint8], NDArray[np.int64]]:
    """SfM-like points: Gaussian centres with ~1 cm noise, their (noisy) colours, and the
    index of the sphere each lies on (-1 for floor and wall)."""
    gaussians = room.gaussians
    count = min(config.points, len(gaussians))
    chosen = np.sort(rng.choice(len(gaussians), size=count, replace=False))
    xyz = gaussians.means.numpy().astype(np.float64)[chosen] + rng.normal(0, 0.01, (count, 3))
    colour = sh_to_rgb(gaussians.sh[:, 0]).numpy().astype(np.float64)[chosen]
    rgb = np.clip(np.rint(colour * 255 + rng.normal(0, 3, (count, 3))), 0, 255).astype(np.uint8)
    sphere = room.part.numpy()[chosen] - 2
    return xyz, rgb, np.where(sphere >= 0, sphere, -1)


def _observe(
    camera: ColmapCamera,
    pose: NDArray[np.float64],
    xyz: NDArray[np.float64],
    sphere: NDArray[np.int64],
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``(point rows, [n, 2] keypoints)`` of the points visible in one frame.

    Visibility uses the room's exact geometry: a point must project inside the image, face the
    camera if it lies on a sphere, and have no sphere between it and the camera (the floor and
    the wall face every camera inside the room). Keypoints are distorted pixel coordinates plus
    0.3 px of noise.
    """
    cam = xyz @ pose[:3, :3].T + pose[:3, 3]
    z = cam[:, 2]
    in_front = z > 0.1
    safe_z = np.where(in_front, z, 1.0)
    u, v = project(camera, cam[:, 0] / safe_z, cam[:, 1] / safe_z)
    inside = in_front & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    centre = -pose[:3, :3].T @ pose[:3, 3]
    visible = inside & ~_behind_a_sphere(xyz, sphere, centre)
    rows = np.flatnonzero(visible)
    keypoints = np.stack([u[rows], v[rows]], axis=-1) + rng.normal(0, 0.3, (len(rows), 2))
    return rows, keypoints


def _behind_a_sphere(
    xyz: NDArray[np.float64], sphere: NDArray[np.int64], eye: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """``[P]`` whether a sphere hides each point from ``eye`` (its own sphere: when the point
    is on the far side)."""
    hidden = np.zeros(len(xyz), dtype=bool)
    to_eye = eye - xyz
    for k, (centre, radius) in enumerate(SPHERES):
        c = np.asarray(centre)
        own = sphere == k
        hidden |= own & (np.einsum("ij,ij->i", xyz - c, to_eye) <= 0)
        # Distance from the sphere's centre to the segment point → eye.
        along = np.einsum("ij,ij->i", c - xyz, to_eye) / np.einsum("ij,ij->i", to_eye, to_eye)
        t = np.clip(along, 0.0, 1.0)
        closest = xyz + t[:, None] * to_eye
        hidden |= ~own & (np.linalg.norm(closest - c, axis=1) < 0.97 * radius)
    return hidden


def _tracks(
    xyz: NDArray[np.float64],
    rgb: NDArray[np.uint8],
    observations: dict[int, tuple[NDArray[np.int64], NDArray[np.float64]]],
    image_ids: dict[int, int],
    rng: np.random.Generator,
) -> tuple[Points3D, dict[int, tuple[NDArray[np.float64], NDArray[np.uint64]]]]:
    """Points seen in ≥ 2 images, with tracks, and every image's keypoints."""
    seen = np.zeros(len(xyz), dtype=np.int64)
    for rows, _ in observations.values():
        seen[rows] += 1
    kept = np.flatnonzero(seen >= 2)
    point_ids = np.zeros(len(xyz), dtype=np.uint64)
    point_ids[kept] = np.arange(1, len(kept) + 1, dtype=np.uint64)
    tracks: dict[int, list[tuple[int, int]]] = {int(row): [] for row in kept}
    keypoints = {}
    for index, (rows, uv) in observations.items():
        keep = seen[rows] >= 2
        rows, uv = rows[keep], uv[keep]
        for k, row in enumerate(rows.tolist()):
            tracks[row].append((image_ids[index], k))
        # Real models also hold keypoints that never became 3D points.
        spare = rng.uniform(0, uv.max(initial=100.0), (5, 2))
        ids = np.concatenate([point_ids[rows], np.full(5, INVALID_POINT3D_ID, dtype=np.uint64)])
        keypoints[index] = (np.concatenate([uv, spare]), ids)
    offsets = np.concatenate([[0], np.cumsum([len(tracks[int(r)]) for r in kept])])
    elements = np.array([e for r in kept for e in tracks[int(r)]], dtype=np.uint32).reshape(-1, 2)
    points = Points3D(
        ids=point_ids[kept],
        xyz=xyz[kept],
        rgb=rgb[kept],
        error=rng.uniform(0.2, 0.8, len(kept)),
        track_offsets=offsets.astype(np.int64),
        track_image_ids=elements[:, 0].copy(),
        track_point2d_idx=elements[:, 1].copy(),
    )
    return points, keypoints


def _rigs_and_frames(
    images: dict[int, ColmapImage],
) -> tuple[dict[int, ColmapRig], dict[int, ColmapFrame]]:
    """One single-camera rig; one frame per image with the image's pose (COLMAP 3.12)."""
    rigs = {1: ColmapRig(1, (SENSOR_CAMERA, 1))}
    frames = {
        image.image_id: ColmapFrame(
            image.image_id, 1, image.qvec, image.tvec, ((SENSOR_CAMERA, 1, image.image_id),)
        )
        for image in images.values()
    }
    return rigs, frames


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
