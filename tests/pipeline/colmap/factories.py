"""Random COLMAP models for reader/writer tests."""

from __future__ import annotations

import numpy as np

from pipeline.colmap import (
    CAMERA_MODELS,
    INVALID_POINT3D_ID,
    SENSOR_CAMERA,
    ColmapCamera,
    ColmapFrame,
    ColmapImage,
    ColmapModel,
    ColmapRig,
    Points3D,
    RigSensor,
)


def random_camera(camera_id: int, model_index: int, rng: np.random.Generator) -> ColmapCamera:
    """A camera of ``CAMERA_MODELS[model_index]`` with random plausible parameters."""
    spec = CAMERA_MODELS[model_index]
    width, height = int(rng.integers(64, 4000)), int(rng.integers(64, 4000))
    params = []
    for name in spec.params:
        if name in ("f", "fx", "fy"):
            params.append(float(rng.uniform(100, 3000)))
        elif name in ("cx", "w"):
            params.append(width / 2 + float(rng.normal()))
        elif name in ("cy", "h"):
            params.append(height / 2 + float(rng.normal()))
        else:
            params.append(float(rng.normal(scale=0.05)))
    return ColmapCamera(camera_id, spec.name, width, height, tuple(params))


def random_unit_quaternion(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def random_model(
    seed: int = 0,
    num_images: int = 12,
    num_points: int = 60,
    with_rigs: bool = True,
    odd_rigs: bool = True,
) -> ColmapModel:
    """A consistent model: one camera of every COLMAP model, images with shuffled ids and
    keypoints, points whose tracks reference those keypoints, and (optionally) one rig per camera
    and one frame per image as COLMAP 3.12 writes them. ``odd_rigs`` adds what the format allows
    but COLMAP itself would refuse (an empty rig, a sensor without a camera, an IMU)."""
    rng = np.random.default_rng(seed)
    camera_ids = rng.permutation(np.arange(1, len(CAMERA_MODELS) + 1) * 3)
    cameras = {int(cid): random_camera(int(cid), i, rng) for i, cid in enumerate(camera_ids)}
    image_ids = [int(i) for i in rng.permutation(np.arange(1, num_images + 1) * 7 + 100)]
    images = {}
    for k, image_id in enumerate(image_ids):
        n = int(rng.integers(0, 30))
        images[image_id] = ColmapImage(
            image_id=image_id,
            qvec=random_unit_quaternion(rng),
            tvec=rng.normal(size=3),
            camera_id=int(camera_ids[k % len(camera_ids)]),
            name=f"scan_{k:06d}.jpg" if k % 3 else f"sub/ß-scan é_{k:06d}.jpg",
            points2d=rng.uniform(0, 2000, size=(n, 2)),
            point3d_ids=np.full(n, INVALID_POINT3D_ID, dtype=np.uint64),
        )
    points = _random_points(rng, images, num_points)
    rigs = frames = None
    if with_rigs:
        rigs, frames = _trivial_rigs(cameras, images, rng, odd_rigs)
    return ColmapModel(cameras, images, points, rigs, frames)


def _random_points(
    rng: np.random.Generator, images: dict[int, ColmapImage], num_points: int
) -> Points3D:
    ids = rng.permutation(np.arange(num_points, dtype=np.uint64) * 5 + 1)
    offsets, track_images, track_points = [0], [], []
    free = [(i, j) for i, image in images.items() for j in range(len(image.point3d_ids))]
    rng.shuffle(free)
    for row in range(num_points):
        length = int(rng.integers(0, 5))
        for _ in range(length):
            if free:
                image_id, point_idx = free.pop()
                images[image_id].point3d_ids[point_idx] = ids[row]
                track_images.append(image_id)
                track_points.append(point_idx)
        offsets.append(len(track_images))
    return Points3D(
        ids=ids,
        xyz=rng.normal(size=(num_points, 3)) * 10,
        rgb=rng.integers(0, 256, size=(num_points, 3)).astype(np.uint8),
        error=rng.uniform(0, 2, size=num_points),
        track_offsets=np.array(offsets, dtype=np.int64),
        track_image_ids=np.array(track_images, dtype=np.uint32),
        track_point2d_idx=np.array(track_points, dtype=np.uint32),
    )


def _trivial_rigs(
    cameras: dict[int, ColmapCamera],
    images: dict[int, ColmapImage],
    rng: np.random.Generator,
    odd_rigs: bool,
) -> tuple[dict[int, ColmapRig], dict[int, ColmapFrame]]:
    camera_ids = sorted(cameras)
    rigs = {}
    for rig_id, camera_id in enumerate(camera_ids, start=1):
        sensors: tuple[RigSensor, ...] = ()
        if rig_id == 1 and odd_rigs:
            pose = (random_unit_quaternion(rng), rng.normal(size=3))
            sensors = (RigSensor(SENSOR_CAMERA, 9999, pose), RigSensor(1, 4, None))
        rigs[rig_id] = ColmapRig(rig_id, (SENSOR_CAMERA, camera_id), sensors)
    if odd_rigs:
        rigs[len(camera_ids) + 1] = ColmapRig(len(camera_ids) + 1, None)
    frames = {}
    for image in images.values():
        rig_id = camera_ids.index(image.camera_id) + 1
        frames[image.image_id] = ColmapFrame(
            image.image_id,
            rig_id,
            image.qvec,
            image.tvec,
            ((SENSOR_CAMERA, image.camera_id, image.image_id),),
        )
    return rigs, frames
