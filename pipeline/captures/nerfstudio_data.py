"""Read a nerfstudio dataset (``transforms.json``) as a COLMAP model the dataset step can use.

The inverse of :mod:`pipeline.nerfstudio`, and what ``ns-process-data`` writes:

- ``transform_matrix``: camera → world in nerfstudio's world, OpenGL camera axes (x right,
  y up, z backwards). Columns 1 and 2 of the rotation are negated to get OpenCV axes. When the
  file has ``applied_transform`` (a ``3×4`` ``[R | t]`` with nerfstudio world = it · COLMAP
  world), its inverse brings poses and points back into the COLMAP world; otherwise the
  nerfstudio world is used as is.
- Intrinsics (``fl_x, fl_y, cx, cy, w, h``, distortion ``k1..k4, p1, p2``, ``camera_model``)
  at the top level, overridden per frame. ``OPENCV`` becomes COLMAP ``PINHOLE`` (no
  distortion), ``OPENCV`` or ``FULL_OPENCV`` (``k3``/``k4`` set); ``OPENCV_FISHEYE`` stays.
  ``w``/``h`` missing: read from the image file.
- Points: ``ply_file_path`` (relative to the file) or ``sparse_pc.ply`` beside it, in
  nerfstudio's world, with ``red green blue`` when present; none: the trainer's random init.

Image names are the frames' ``file_path`` values, resolved against the folder of
``transforms.json`` (the ``frames_dir`` handed to :func:`~pipeline.dataset.build_scene`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError
from plyfile import PlyData

from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, Points3D, rotmat_to_qvec
from pipeline.errors import InputError, UnsupportedCameraError

__all__ = ["read_nerfstudio_data"]

F64 = NDArray[np.float64]
_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def read_nerfstudio_data(transforms_path: Path) -> ColmapModel:
    """The model described by ``transforms_path`` (cameras, images, points).

    Raises:
        InputError: the file is unreadable, has no frames, or a frame lacks a key (named).
        UnsupportedCameraError: a ``camera_model`` other than ``OPENCV`` / ``OPENCV_FISHEYE``.
    """
    data = _load(transforms_path)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{transforms_path} has no frames")
    to_colmap = _inverse_applied(data.get("applied_transform"), transforms_path)
    cameras: dict[tuple[Any, ...], ColmapCamera] = {}
    images: dict[int, ColmapImage] = {}
    for index, frame in enumerate(frames, start=1):
        where = f"{transforms_path} frame {index}"
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise InputError(f"{where}: no file_path")
        name = str(frame["file_path"])
        key = _camera_key({**data, **frame}, transforms_path.parent / name, where)
        camera = cameras.setdefault(key, _camera(len(cameras) + 1, key))
        world_to_camera: F64 = np.linalg.inv(to_colmap @ _c2w_opencv(frame, where)).astype(
            np.float64
        )
        qvec = rotmat_to_qvec(world_to_camera[:3, :3])
        images[index] = ColmapImage(index, qvec, world_to_camera[:3, 3], camera.camera_id, name)
    points = _points(data, transforms_path, to_colmap)
    return ColmapModel({c.camera_id: c for c in cameras.values()}, images, points)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'frames'")
    return data


def _inverse_applied(applied: Any, path: Path) -> F64:
    """``[4, 4]`` nerfstudio world → COLMAP world (identity without ``applied_transform``)."""
    if applied is None:
        return np.eye(4)
    matrix = np.eye(4)
    try:
        matrix[:3, :4] = np.asarray(applied, dtype=np.float64).reshape(3, 4)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: applied_transform must be 3x4 numbers") from exc
    return np.asarray(np.linalg.inv(matrix))


def _c2w_opencv(frame: dict[str, Any], where: str) -> F64:
    try:
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except KeyError as exc:
        raise InputError(f"{where}: no transform_matrix") from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: transform_matrix is not numbers") from exc
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
    if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
        raise InputError(f"{where}: transform_matrix must be a finite 4x4 matrix")
    return np.asarray(c2w @ _OPENGL_TO_OPENCV)


def _camera_key(entry: dict[str, Any], image_path: Path, where: str) -> tuple[Any, ...]:
    """``(camera_model, fl_x, fl_y, cx, cy, w, h, k1, k2, k3, k4, p1, p2)`` of one frame."""
    model = str(entry.get("camera_model", "OPENCV"))
    if model not in ("OPENCV", "OPENCV_FISHEYE", "PINHOLE", "SIMPLE_PINHOLE"):
        raise UnsupportedCameraError(f"{where}: camera_model {model} is not supported")
    if "w" not in entry or "h" not in entry:
        entry = {**entry, **_image_size(image_path, where)}
    try:
        values = [float(entry[k]) for k in _INTRINSIC_KEYS]
    except KeyError as exc:
        raise InputError(f"{where}: intrinsics lack {exc.args[0]}") from exc
    distortion = [float(entry.get(k, 0.0)) for k in _DISTORTION_KEYS]
    return (model, *values, *distortion)


def _image_size(path: Path, where: str) -> dict[str, int]:
    try:
        with Image.open(path) as image:
            return {"w": image.width, "h": image.height}
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{where}: no w/h and cannot open {path}: {exc}") from exc


def _camera(camera_id: int, key: tuple[Any, ...]) -> ColmapCamera:
    model, fx, fy, cx, cy, w, h, k1, k2, k3, k4, p1, p2 = key
    size = (int(w), int(h))
    if model == "OPENCV_FISHEYE":
        return ColmapCamera(camera_id, "OPENCV_FISHEYE", *size, (fx, fy, cx, cy, k1, k2, k3, k4))
    if k3 or k4:
        params = (fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, 0.0, 0.0)
        return ColmapCamera(camera_id, "FULL_OPENCV", *size, params)
    if k1 or k2 or p1 or p2:
        return ColmapCamera(camera_id, "OPENCV", *size, (fx, fy, cx, cy, k1, k2, p1, p2))
    return ColmapCamera(camera_id, "PINHOLE", *size, (fx, fy, cx, cy))


def _points(data: dict[str, Any], transforms_path: Path, to_colmap: F64) -> Points3D:
    ply = data.get("ply_file_path")
    path = transforms_path.parent / (str(ply) if ply else "sparse_pc.ply")
    if not path.is_file():
        if ply:
            raise InputError(f"{transforms_path}: ply_file_path {ply} does not exist")
        return Points3D.empty()
    xyz, rgb = _read_point_ply(path)
    xyz = xyz @ to_colmap[:3, :3].T + to_colmap[:3, 3]
    count = len(xyz)
    return Points3D(
        ids=np.arange(1, count + 1, dtype=np.uint64),
        xyz=xyz,
        rgb=rgb,
        error=np.zeros(count),
        track_offsets=np.zeros(count + 1, np.int64),
        track_image_ids=np.zeros(0, np.uint32),
        track_point2d_idx=np.zeros(0, np.uint32),
    )


def _read_point_ply(path: Path) -> tuple[F64, NDArray[np.uint8]]:
    """``([P, 3] float64 xyz, [P, 3] uint8 rgb)`` of a point-cloud PLY (grey without colours)."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
        xyz = np.stack([np.asarray(vertex[k], dtype=np.float64) for k in "xyz"], axis=-1)
    except Exception as exc:  # plyfile raises many types for malformed files
        raise InputError(f"cannot read point cloud {path}: {exc}") from exc
    names = vertex.data.dtype.names or ()
    if all(c in names for c in ("red", "green", "blue")):
        rgb = np.stack([np.asarray(vertex[c]) for c in ("red", "green", "blue")], axis=-1)
    else:
        rgb = np.full((len(xyz), 3), 128)
    finite = np.isfinite(xyz).all(axis=1)
    return xyz[finite], np.clip(rgb[finite], 0, 255).astype(np.uint8)
