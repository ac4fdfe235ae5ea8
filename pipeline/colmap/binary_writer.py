"""Writer for COLMAP's binary model files (layouts in :mod:`pipeline.colmap.binary_reader`).

Records are written in the order COLMAP writes them: cameras, rigs, frames and points sorted by
id; images in the order of ``ColmapModel.images``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline.colmap.camera_models import model_by_name
from pipeline.colmap.model import (
    ColmapCamera,
    ColmapFrame,
    ColmapImage,
    ColmapModel,
    ColmapRig,
    Points3D,
)

__all__ = [
    "encode_cameras",
    "encode_frames",
    "encode_images",
    "encode_points3d",
    "encode_rigs",
    "write_model",
]

_U64 = struct.Struct("<Q")


def encode_cameras(cameras: dict[int, ColmapCamera]) -> bytes:
    """``cameras.bin`` bytes."""
    parts = [_U64.pack(len(cameras))]
    for camera_id in sorted(cameras):
        camera = cameras[camera_id]
        spec = model_by_name(camera.model)
        if len(camera.params) != spec.num_params:
            raise ValueError(f"{camera.model} takes {spec.num_params} params, got {camera.params}")
        head = struct.pack("<IiQQ", camera_id, spec.model_id, camera.width, camera.height)
        parts += [head, struct.pack(f"<{spec.num_params}d", *camera.params)]
    return b"".join(parts)


def encode_images(images: dict[int, ColmapImage]) -> bytes:
    """``images.bin`` bytes."""
    parts = [_U64.pack(len(images))]
    for image in images.values():
        pose = struct.pack("<I4d3dI", image.image_id, *image.qvec, *image.tvec, image.camera_id)
        points = np.empty(len(image.point3d_ids), dtype=[("xy", "<f8", 2), ("id", "<u8")])
        points["xy"] = image.points2d
        points["id"] = image.point3d_ids
        name = image.name.encode("utf-8") + b"\0"
        parts += [pose, name, _U64.pack(len(points)), points.tobytes()]
    return b"".join(parts)


def encode_points3d(points: Points3D) -> bytes:
    """``points3D.bin`` bytes (points sorted by id)."""
    parts = [_U64.pack(len(points))]
    lengths = points.track_lengths()
    for row in np.argsort(points.ids, kind="stable"):
        head = struct.pack(
            "<Q3d3BdQ",
            int(points.ids[row]),
            *points.xyz[row].tolist(),
            *points.rgb[row].tolist(),
            float(points.error[row]),
            int(lengths[row]),
        )
        image_ids, point2d_idx = points.track(int(row))
        track = np.empty(len(image_ids), dtype=[("image", "<u4"), ("point", "<u4")])
        track["image"], track["point"] = image_ids, point2d_idx
        parts += [head, track.tobytes()]
    return b"".join(parts)


def encode_rigs(rigs: dict[int, ColmapRig]) -> bytes:
    """``rigs.bin`` bytes (COLMAP ≥ 3.12)."""
    parts = [_U64.pack(len(rigs))]
    for rig_id in sorted(rigs):
        rig = rigs[rig_id]
        if rig.ref_sensor is None:
            if rig.sensors:
                raise ValueError(f"rig {rig_id} has sensors but no reference sensor")
            parts.append(struct.pack("<II", rig_id, 0))
            continue
        parts.append(struct.pack("<IIiI", rig_id, 1 + len(rig.sensors), *rig.ref_sensor))
        for sensor in rig.sensors:
            has_pose = sensor.sensor_from_rig is not None
            parts.append(struct.pack("<iIB", sensor.sensor_type, sensor.sensor_id, has_pose))
            if sensor.sensor_from_rig is not None:
                qvec, tvec = sensor.sensor_from_rig
                parts.append(struct.pack("<7d", *qvec, *tvec))
    return b"".join(parts)


def encode_frames(frames: dict[int, ColmapFrame]) -> bytes:
    """``frames.bin`` bytes (COLMAP ≥ 3.12)."""
    parts = [_U64.pack(len(frames))]
    for frame_id in sorted(frames):
        frame = frames[frame_id]
        head = struct.pack(
            "<II7dI", frame_id, frame.rig_id, *frame.qvec, *frame.tvec, len(frame.data_ids)
        )
        parts.append(head)
        parts += [struct.pack("<iIQ", *data_id) for data_id in frame.data_ids]
    return b"".join(parts)


def write_model(model: ColmapModel, folder: Path) -> None:
    """Write ``model`` into ``folder`` (created if needed); rigs/frames only when present."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cameras.bin").write_bytes(encode_cameras(model.cameras))
    (folder / "images.bin").write_bytes(encode_images(model.images))
    (folder / "points3D.bin").write_bytes(encode_points3d(model.points3d))
    if model.rigs is not None:
        (folder / "rigs.bin").write_bytes(encode_rigs(model.rigs))
    if model.frames is not None:
        (folder / "frames.bin").write_bytes(encode_frames(model.frames))
