"""The SfM side of the synthetic job: a COLMAP model as a reconstruction would produce it.

Points are Gaussian centres with ~1 cm of noise; an image observes a point when the room's exact
geometry says it is visible; keypoints carry 0.3 px of noise; points seen fewer than twice are
dropped, as SfM would. Image ids are shuffled so that id order differs from name order.
"""

from __future__ import annotations

import numpy as np
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
    rotmat_to_qvec,
)
from pipeline.colmap.distortion import project
from pipeline.contract import frame_name
from pipeline.render.sh import sh_to_rgb
from pipeline.synthetic.scene import SPHERES, SceneParts

__all__ = ["build_sfm_model"]


def build_sfm_model(
    scan: str,
    num_points: int,
    write_rigs: bool,
    camera: ColmapCamera,
    poses: list[NDArray[np.float64]],
    registered: list[int],
    room: SceneParts,
    rng: np.random.Generator,
) -> ColmapModel:
    """The model of the frames ``registered`` (indices into ``poses``) of recording ``scan``.

    Args:
        num_points: points to sample before dropping those seen fewer than twice.
        write_rigs: include COLMAP 3.12 rigs and frames.
    """
    # Shuffled ids: image id order differs from name order, as in real models.
    shuffled = rng.permutation(len(registered)) + 1
    image_ids = {index: int(i) for index, i in zip(registered, shuffled, strict=True)}
    xyz, rgb, sphere = _sample_points(num_points, room, rng)
    observations = {index: _observe(camera, poses[index], xyz, sphere, rng) for index in registered}
    points, keypoints = _tracks(xyz, rgb, observations, image_ids, rng)
    images = {}
    for index in sorted(registered, key=lambda i: image_ids[i]):
        image_id = image_ids[index]
        rotation, translation = poses[index][:3, :3], poses[index][:3, 3]
        points2d, point_ids = keypoints[index]
        name = frame_name(scan, index)
        qvec = rotmat_to_qvec(rotation)
        images[image_id] = ColmapImage(
            image_id, qvec, translation.copy(), 1, name, points2d, point_ids
        )
    rigs, frames = _rigs_and_frames(images) if write_rigs else (None, None)
    return ColmapModel({1: camera}, images, points, rigs, frames)


def _sample_points(
    num_points: int, room: SceneParts, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.uint8], NDArray[np.int64]]:
    """SfM-like points: Gaussian centres with ~1 cm noise, their (noisy) colours, and the
    index of the sphere each lies on (-1 for floor and wall)."""
    gaussians = room.gaussians
    count = min(num_points, len(gaussians))
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
