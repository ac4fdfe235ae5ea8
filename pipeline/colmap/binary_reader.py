"""Reader for COLMAP's binary model files (little-endian, as COLMAP writes them).

Layouts (``u32``/``u64`` unsigned, ``i32`` signed, ``f64`` double, all little-endian):

- ``cameras.bin``: ``u64 count``; per camera ``u32 camera_id, i32 model_id, u64 width,
  u64 height, f64 params[num_params(model_id)]``.
- ``images.bin``: ``u64 count``; per image ``u32 image_id, f64 qw qx qy qz, f64 tx ty tz,
  u32 camera_id, name bytes + NUL, u64 num_points2D``, then per point ``f64 x, f64 y,
  u64 point3D_id``.
- ``points3D.bin``: ``u64 count``; per point ``u64 point3D_id, f64 x y z, u8 r g b, f64 error,
  u64 track_length``, then per element ``u32 image_id, u32 point2D_idx``.
- ``rigs.bin`` (COLMAP ≥ 3.12): ``u64 count``; per rig ``u32 rig_id, u32 num_sensors``; if
  ``num_sensors > 0`` the reference sensor ``i32 type, u32 id``; then ``num_sensors - 1`` times
  ``i32 type, u32 id, u8 has_pose`` and, if ``has_pose``, ``f64 qw qx qy qz tx ty tz``
  (``sensor_from_rig``).
- ``frames.bin`` (COLMAP ≥ 3.12): ``u64 count``; per frame ``u32 frame_id, u32 rig_id,
  f64 qw qx qy qz tx ty tz`` (``rig_from_world``), ``u32 num_data_ids``, then per data id
  ``i32 sensor_type, u32 sensor_id, u64 data_id``.

Every malformed input raises :class:`~pipeline.errors.ColmapFormatError` naming the file, the
record and the byte offset; never a ``struct.error``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.colmap.camera_models import CAMERA_MODELS, model_by_id
from pipeline.colmap.model import (
    ColmapCamera,
    ColmapFrame,
    ColmapImage,
    ColmapModel,
    ColmapRig,
    Points3D,
    RigSensor,
)
from pipeline.contract import COLMAP_REQUIRED_FILES
from pipeline.errors import ColmapFormatError, InputError

__all__ = [
    "read_cameras",
    "read_frames",
    "read_images",
    "read_model",
    "read_points3d",
    "read_rigs",
]


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_CAMERA_HEAD = struct.Struct("<IiQQ")
_IMAGE_HEAD = struct.Struct("<I4d3dI")
_POINT_HEAD = struct.Struct("<Q3d3BdQ")
_SENSOR = struct.Struct("<iI")
_POSE = struct.Struct("<7d")
_FRAME_HEAD = struct.Struct("<II7dI")
_DATA_ID = struct.Struct("<iIQ")
_POINT2D = np.dtype([("x", "<f8"), ("y", "<f8"), ("point3d_id", "<u8")])
_TRACK_ELEMENT = np.dtype([("image_id", "<u4"), ("point2d_idx", "<u4")])
_POINT_RECORD = np.dtype(
    [("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track", "<u8")]
)


class _Cursor:
    """Bounds-checked reading of one file's bytes; every failure names file, record, offset."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.offset = 0

    def fail(self, detail: str, record: str | None, offset: int | None = None) -> ColmapFormatError:
        where = self.offset if offset is None else offset
        return ColmapFormatError(self.path, detail, record, where)

    def need(self, size: int, record: str | None) -> None:
        left = len(self.data) - self.offset
        if size > left:
            raise self.fail(f"file ends early: {size} bytes needed, {left} left", record)

    def unpack(self, layout: struct.Struct, record: str | None) -> tuple[Any, ...]:
        self.need(layout.size, record)
        values = layout.unpack_from(self.data, self.offset)
        self.offset += layout.size
        return values

    def u32(self, record: str | None) -> int:
        return int(self.unpack(_U32, record)[0])

    def count(self, what: str, min_record_size: int) -> int:
        """The leading ``u64`` record count, checked against the bytes that follow."""
        n = int(self.unpack(_U64, "header")[0])
        left = len(self.data) - self.offset
        if n * min_record_size > left:
            raise self.fail(
                f"header claims {n} {what}, but only {left} bytes follow "
                f"(each needs at least {min_record_size})",
                "header",
                0,
            )
        return n

    def array(self, dtype: np.dtype, count: int, record: str) -> NDArray[np.void]:
        self.need(count * dtype.itemsize, record)
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += count * dtype.itemsize
        return values

    def c_string(self, record: str) -> str:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise self.fail("image name is not NUL-terminated before the end of the file", record)
        raw = self.data[self.offset : end]
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"image name is not valid UTF-8 ({raw[:40]!r})", record) from exc
        if not name:
            raise self.fail("image name is empty", record)
        self.offset = end + 1
        return name

    def finish(self) -> None:
        extra = len(self.data) - self.offset
        if extra:
            raise self.fail(f"{extra} unexpected bytes after the last record", None)


def _open(path: Path) -> _Cursor:
    try:
        return _Cursor(path, path.read_bytes())
    except FileNotFoundError as exc:
        raise InputError(f"COLMAP model file missing: {path}") from exc
    except OSError as exc:
        raise InputError(f"cannot read COLMAP model file {path}: {exc.strerror}") from exc


def _finite(values: tuple[float, ...] | NDArray[np.float64]) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def read_cameras(path: Path) -> dict[int, ColmapCamera]:
    """All cameras of a ``cameras.bin``, by camera id."""
    cursor = _open(path)
    count = cursor.count("cameras", _CAMERA_HEAD.size)
    cameras: dict[int, ColmapCamera] = {}
    for i in range(count):
        camera = _read_camera(cursor, f"camera {i + 1} of {count}")
        if camera.camera_id in cameras:
            raise cursor.fail(f"duplicate camera id {camera.camera_id}", f"camera {i + 1}")
        cameras[camera.camera_id] = camera
    cursor.finish()
    return cameras


def _read_camera(cursor: _Cursor, record: str) -> ColmapCamera:
    start = cursor.offset
    camera_id, model_id, width, height = cursor.unpack(_CAMERA_HEAD, record)
    spec = model_by_id(int(model_id))
    if spec is None:
        known = f"{CAMERA_MODELS[0].model_id}..{CAMERA_MODELS[-1].model_id}"
        detail = f"unknown camera model id {model_id} (COLMAP knows {known})"
        raise cursor.fail(detail, record, start)
    params = cursor.unpack(struct.Struct(f"<{spec.num_params}d"), record)
    if not (0 < int(width) < 2**31 and 0 < int(height) < 2**31):
        raise cursor.fail(f"implausible image size {width}x{height}", record, start)
    if not _finite(params):
        raise cursor.fail(f"non-finite {spec.name} parameters {params}", record, start)
    return ColmapCamera(
        int(camera_id),
        spec.name,
        int(width),
        int(height),
        tuple(float(p) for p in params),
    )


def read_images(path: Path) -> dict[int, ColmapImage]:
    """All images of an ``images.bin``, by image id, in file order."""
    cursor = _open(path)
    min_size = _IMAGE_HEAD.size + 1 + _U64.size  # at least the name's NUL
    count = cursor.count("images", min_size)
    images: dict[int, ColmapImage] = {}
    names: set[str] = set()
    for i in range(count):
        record = f"image {i + 1} of {count}"
        image = _read_image(cursor, record)
        if image.image_id in images:
            raise cursor.fail(f"duplicate image id {image.image_id}", record)
        if image.name in names:
            raise cursor.fail(f"duplicate image name {image.name!r}", record)
        images[image.image_id] = image
        names.add(image.name)
    cursor.finish()
    return images


def _read_image(cursor: _Cursor, record: str) -> ColmapImage:
    start = cursor.offset
    head = cursor.unpack(_IMAGE_HEAD, record)
    image_id, camera_id = int(head[0]), int(head[8])
    qvec = np.array(head[1:5], dtype=np.float64)
    tvec = np.array(head[5:8], dtype=np.float64)
    record = f"{record} (id {image_id})"
    if not (_finite(qvec) and _finite(tvec)) or np.abs(qvec).max() < 1e-12:
        raise cursor.fail(f"invalid pose q={qvec.tolist()} t={tvec.tolist()}", record, start)
    name = cursor.c_string(record)
    record = f"image {name!r} (id {image_id})"
    count_offset = cursor.offset
    num_points = int(cursor.unpack(_U64, record)[0])
    if num_points * _POINT2D.itemsize > len(cursor.data) - cursor.offset:
        raise cursor.fail(
            f"claims {num_points} 2D points, more than the file holds", record, count_offset
        )
    points = cursor.array(_POINT2D, num_points, record)
    return ColmapImage(
        image_id=image_id,
        qvec=qvec,
        tvec=tvec,
        camera_id=camera_id,
        name=name,
        points2d=np.stack([points["x"], points["y"]], axis=-1).astype(np.float64),
        point3d_ids=points["point3d_id"].astype(np.uint64),
    )


def read_points3d(path: Path) -> Points3D:
    """All points of a ``points3D.bin``."""
    cursor = _open(path)
    count = cursor.count("points", _POINT_HEAD.size)
    heads = np.empty(count, dtype=np.int64)  # byte offset of each record
    track_lengths = np.empty(count, dtype=np.int64)
    data, size = cursor.data, len(cursor.data)
    offset = cursor.offset
    for i in range(count):
        # Only the track length is decoded here; the fixed fields are gathered below at once.
        if offset + _POINT_HEAD.size > size:
            cursor.offset = offset
            raise cursor.fail("file ends inside a point record", f"point {i + 1} of {count}")
        length = _U64.unpack_from(data, offset + _POINT_HEAD.size - 8)[0]
        end = offset + _POINT_HEAD.size + 8 * length
        if end > size:
            raise cursor.fail(
                f"track of {length} elements runs past the end of the file",
                f"point {i + 1} of {count}",
                offset,
            )
        heads[i], track_lengths[i] = offset, length
        offset = end
    cursor.offset = offset
    cursor.finish()
    return _gather_points(cursor, heads, track_lengths)


def _gather_points(
    cursor: _Cursor, heads: NDArray[np.int64], track_lengths: NDArray[np.int64]
) -> Points3D:
    # The file is the 8-byte count, then (51-byte header, track bytes) per point: mark the track
    # byte ranges, and both kinds of field come out as two contiguous copies.
    raw = np.frombuffer(cursor.data, dtype=np.uint8)
    starts = heads + _POINT_HEAD.size
    marks = np.zeros(raw.size + 1, dtype=np.int8)
    marks[starts] += 1
    np.subtract.at(marks, starts + 8 * track_lengths, 1)
    in_track = np.cumsum(marks[:-1], dtype=np.int8).astype(bool)
    in_header = ~in_track
    in_header[: _U64.size] = False
    headers = raw[in_header].view(_POINT_RECORD)
    elements = raw[in_track].view(_TRACK_ELEMENT)
    points = Points3D(
        ids=headers["id"].astype(np.uint64),
        xyz=headers["xyz"].astype(np.float64),
        rgb=headers["rgb"].astype(np.uint8),
        error=headers["error"].astype(np.float64),
        track_offsets=np.concatenate([[0], np.cumsum(track_lengths)]).astype(np.int64),
        track_image_ids=elements["image_id"].astype(np.uint32),
        track_point2d_idx=elements["point2d_idx"].astype(np.uint32),
    )
    _check_points(cursor, points, heads)
    return points


def _check_points(cursor: _Cursor, points: Points3D, heads: NDArray[np.int64]) -> None:
    bad = np.flatnonzero(~np.isfinite(points.xyz).all(axis=1))
    if bad.size:
        i = int(bad[0])
        raise cursor.fail(
            f"non-finite position {points.xyz[i].tolist()}",
            f"point {i + 1} (id {points.ids[i]})",
            int(heads[i]),
        )
    unique, first = np.unique(points.ids, return_index=True)
    if unique.size != len(points):
        dup = np.setdiff1d(np.arange(len(points)), first)[0]
        raise cursor.fail(
            f"duplicate point id {points.ids[dup]}", f"point {dup + 1}", int(heads[dup])
        )


def read_rigs(path: Path) -> dict[int, ColmapRig]:
    """All rigs of a ``rigs.bin`` (COLMAP ≥ 3.12), by rig id."""
    cursor = _open(path)
    count = cursor.count("rigs", 8)
    rigs: dict[int, ColmapRig] = {}
    for i in range(count):
        rig = _read_rig(cursor, f"rig {i + 1} of {count}")
        if rig.rig_id in rigs:
            raise cursor.fail(f"duplicate rig id {rig.rig_id}", f"rig {i + 1}")
        rigs[rig.rig_id] = rig
    cursor.finish()
    return rigs


def _read_rig(cursor: _Cursor, record: str) -> ColmapRig:
    rig_id = cursor.u32(record)
    count_offset = cursor.offset
    num_sensors = cursor.u32(record)
    if num_sensors * _SENSOR.size > len(cursor.data) - cursor.offset:
        raise cursor.fail(
            f"claims {num_sensors} sensors, more than the file holds", record, count_offset
        )
    if num_sensors == 0:
        return ColmapRig(rig_id, None)
    ref_type, ref_id = cursor.unpack(_SENSOR, record)
    sensors = []
    for _ in range(num_sensors - 1):
        sensor_type, sensor_id = cursor.unpack(_SENSOR, record)
        has_pose = cursor.unpack(struct.Struct("<B"), record)[0]
        pose = None
        if has_pose:
            values = np.array(cursor.unpack(_POSE, record), dtype=np.float64)
            pose = (values[:4], values[4:])
        sensors.append(RigSensor(int(sensor_type), int(sensor_id), pose))
    return ColmapRig(rig_id, (int(ref_type), int(ref_id)), tuple(sensors))


def read_frames(path: Path) -> dict[int, ColmapFrame]:
    """All frames of a ``frames.bin`` (COLMAP ≥ 3.12), by frame id."""
    cursor = _open(path)
    count = cursor.count("frames", _FRAME_HEAD.size)
    frames: dict[int, ColmapFrame] = {}
    for i in range(count):
        record = f"frame {i + 1} of {count}"
        start = cursor.offset
        head = cursor.unpack(_FRAME_HEAD, record)
        num_data = int(head[9])
        if num_data * _DATA_ID.size > len(cursor.data) - cursor.offset:
            raise cursor.fail(
                f"claims {num_data} data ids, more than the file holds", record, start
            )
        data_ids = []
        for _ in range(num_data):
            sensor_type, sensor_id, data_id = cursor.unpack(_DATA_ID, record)
            data_ids.append((int(sensor_type), int(sensor_id), int(data_id)))
        frame = ColmapFrame(
            frame_id=int(head[0]),
            rig_id=int(head[1]),
            qvec=np.array(head[2:6], dtype=np.float64),
            tvec=np.array(head[6:9], dtype=np.float64),
            data_ids=tuple(data_ids),
        )
        if frame.frame_id in frames:
            raise cursor.fail(f"duplicate frame id {frame.frame_id}", record, start)
        frames[frame.frame_id] = frame
    cursor.finish()
    return frames


def read_model(folder: Path) -> ColmapModel:
    """Read a model folder: ``cameras.bin``, ``images.bin``, ``points3D.bin`` (required) and
    ``rigs.bin``/``frames.bin`` (read when present).

    Raises:
        InputError: a required file is missing (all missing ones are named).
        ColmapFormatError: a file is corrupt, or images name cameras the model lacks.
    """
    missing = [name for name in COLMAP_REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"COLMAP model in {folder} is incomplete: missing {', '.join(missing)}")
    cameras = read_cameras(folder / "cameras.bin")
    images = read_images(folder / "images.bin")
    points = read_points3d(folder / "points3D.bin")
    _check_references(folder, cameras, images, points)
    rigs = read_rigs(folder / "rigs.bin") if (folder / "rigs.bin").is_file() else None
    frames = read_frames(folder / "frames.bin") if (folder / "frames.bin").is_file() else None
    return ColmapModel(cameras, images, points, rigs, frames)


def _check_references(
    folder: Path, cameras: dict[int, ColmapCamera], images: dict[int, ColmapImage], points: Points3D
) -> None:
    for image in images.values():
        if image.camera_id not in cameras:
            raise ColmapFormatError(
                folder / "images.bin",
                f"refers to camera {image.camera_id}, which cameras.bin does not define",
                f"image {image.name!r} (id {image.image_id})",
            )
    known = np.array(sorted(images), dtype=np.uint32)
    unknown = ~np.isin(points.track_image_ids, known)
    if unknown.any():
        element = int(np.flatnonzero(unknown)[0])
        row = int(np.searchsorted(points.track_offsets, element, side="right") - 1)
        raise ColmapFormatError(
            folder / "points3D.bin",
            f"track refers to image {points.track_image_ids[element]}, not in images.bin",
            f"point id {points.ids[row]}",
        )
