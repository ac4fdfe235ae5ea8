"""COLMAP's text model files (``cameras.txt``, ``images.txt``, ``points3D.txt``).

Formats (one record per line, fields separated by spaces, ``#`` starts a comment line):

- ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`` (as many params as the model has).
- ``images.txt``: two lines per image: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME``, then
  ``X Y POINT3D_ID`` triples (``-1`` = no 3D point); the second line may be empty. ``NAME`` may
  contain a folder (``sub/img.jpg``); it is the rest of the line after ``CAMERA_ID`` (COLMAP
  itself stops at the first space, so names with spaces only round-trip here).
- ``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR`` then ``IMAGE_ID POINT2D_IDX`` pairs.

Every malformed line raises :class:`~pipeline.errors.ColmapTextError` naming ``file:line``.
Floats are written with Python's shortest round-trip form, so write → read is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np

from pipeline.colmap.binary_reader import read_model
from pipeline.colmap.camera_models import model_by_name
from pipeline.colmap.model import (
    INVALID_POINT3D_ID,
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    Points3D,
)
from pipeline.errors import ColmapTextError, InputError

__all__ = [
    "TEXT_MODEL_FILES",
    "read_any_model",
    "read_cameras_text",
    "read_images_text",
    "read_points3d_text",
    "read_text_model",
    "write_text_model",
]

TEXT_MODEL_FILES: Final = ("cameras.txt", "images.txt", "points3D.txt")


class _Lines:
    """The lines of one text file with their 1-based numbers; failures name ``file:line``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise InputError(f"COLMAP model file missing: {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read COLMAP model file {path}: {exc}") from exc
        self.lines = text.splitlines()
        self.index = 0

    def fail(self, line: int, detail: str) -> ColmapTextError:
        return ColmapTextError(self.path, line, detail)

    def records(self) -> Iterator[tuple[int, str]]:
        """``(line number, stripped text)`` of every non-empty, non-comment line."""
        while self.index < len(self.lines):
            number, text = self.index + 1, self.lines[self.index].strip()
            self.index += 1
            if text and not text.startswith("#"):
                yield number, text

    def next_raw(self) -> tuple[int, str]:
        """The next line as is (stripped), even if empty: the 2D points line of an image."""
        number = self.index + 1
        text = self.lines[self.index].strip() if self.index < len(self.lines) else ""
        self.index += 1
        return number, text


def _numbers(lines: _Lines, line: int, fields: list[str], kind: type, what: str) -> list[float]:
    try:
        values = [kind(field) for field in fields]
    except ValueError as exc:
        raise lines.fail(line, f"{what}: {exc}") from exc
    if kind is float and not np.isfinite(np.asarray(values, dtype=np.float64)).all():
        raise lines.fail(line, f"{what} must be finite, got {fields}")
    return values


def read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    """All cameras of a ``cameras.txt``, by camera id."""
    lines = _Lines(path)
    cameras: dict[int, ColmapCamera] = {}
    for number, text in lines.records():
        fields = text.split()
        if len(fields) < 4:
            raise lines.fail(number, f"expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS, got {text!r}")
        camera_id, width, height = _numbers(lines, number, [fields[0], *fields[2:4]], int, "ids")
        try:
            spec = model_by_name(fields[1])
        except (KeyError, ValueError) as exc:
            raise lines.fail(number, f"unknown camera model {fields[1]!r}") from exc
        if len(fields) - 4 != spec.num_params:
            raise lines.fail(
                number, f"{spec.name} takes {spec.num_params} params, got {len(fields) - 4}"
            )
        if width <= 0 or height <= 0:
            raise lines.fail(number, f"implausible image size {width}x{height}")
        if camera_id in cameras:
            raise lines.fail(number, f"duplicate camera id {camera_id}")
        params = _numbers(lines, number, fields[4:], float, "camera params")
        cameras[int(camera_id)] = ColmapCamera(
            int(camera_id), spec.name, int(width), int(height), tuple(params)
        )
    return cameras


def read_images_text(path: Path) -> dict[int, ColmapImage]:
    """All images of an ``images.txt``, by image id, in file order."""
    lines = _Lines(path)
    images: dict[int, ColmapImage] = {}
    names: set[str] = set()
    for number, text in lines.records():
        image = _image_line(lines, number, text)
        if image.image_id in images:
            raise lines.fail(number, f"duplicate image id {image.image_id}")
        if image.name in names:
            raise lines.fail(number, f"duplicate image name {image.name!r}")
        points_line, points_text = lines.next_raw()
        _points2d(lines, points_line, points_text, image)
        images[image.image_id] = image
        names.add(image.name)
    return images


def _image_line(lines: _Lines, number: int, text: str) -> ColmapImage:
    fields = text.split(maxsplit=9)
    if len(fields) < 10:
        raise lines.fail(
            number, f"expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {text!r}"
        )
    image_id, camera_id = _numbers(lines, number, [fields[0], fields[8]], int, "ids")
    pose = np.array(_numbers(lines, number, fields[1:8], float, "pose"), dtype=np.float64)
    if np.abs(pose[:4]).max() < 1e-12:
        raise lines.fail(number, "the rotation quaternion is zero")
    return ColmapImage(int(image_id), pose[:4], pose[4:], int(camera_id), fields[9].strip())


def _points2d(lines: _Lines, number: int, text: str, image: ColmapImage) -> None:
    fields = text.split()
    if len(fields) % 3:
        detail = f"2D points of image {image.name!r} are not X Y POINT3D_ID triples"
        raise lines.fail(number, detail)
    xy = _numbers(lines, number, [f for i, f in enumerate(fields) if i % 3 != 2], float, "2D point")
    ids = _numbers(lines, number, fields[2::3], int, "point3D id")
    image.points2d = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    image.point3d_ids = np.array(
        [INVALID_POINT3D_ID if i < 0 else i for i in ids], dtype=np.uint64
    ).reshape(-1)


def read_points3d_text(path: Path) -> Points3D:
    """All points of a ``points3D.txt``."""
    lines = _Lines(path)
    ids, xyz, rgb, errors, lengths = [], [], [], [], []
    track_images: list[int] = []
    track_idx: list[int] = []
    for number, text in lines.records():
        fields = text.split()
        if len(fields) < 8 or (len(fields) - 8) % 2:
            raise lines.fail(
                number, "expected POINT3D_ID X Y Z R G B ERROR then IMAGE_ID POINT2D_IDX pairs"
            )
        ids.append(int(_numbers(lines, number, fields[:1], int, "point id")[0]))
        xyz.append(_numbers(lines, number, fields[1:4], float, "position"))
        colour = _numbers(lines, number, fields[4:7], int, "colour")
        if not all(0 <= c <= 255 for c in colour):
            raise lines.fail(number, f"colour must be 0..255, got {fields[4:7]}")
        rgb.append(colour)
        errors.append(_numbers(lines, number, fields[7:8], float, "error")[0])
        track = _numbers(lines, number, fields[8:], int, "track")
        track_images.extend(int(t) for t in track[0::2])
        track_idx.extend(int(t) for t in track[1::2])
        lengths.append(len(track) // 2)
    return Points3D(
        ids=np.array(ids, dtype=np.uint64),
        xyz=np.array(xyz, dtype=np.float64).reshape(-1, 3),
        rgb=np.array(rgb, dtype=np.uint8).reshape(-1, 3),
        error=np.array(errors, dtype=np.float64),
        track_offsets=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        track_image_ids=np.array(track_images, dtype=np.uint32),
        track_point2d_idx=np.array(track_idx, dtype=np.uint32),
    )


def read_text_model(folder: Path) -> ColmapModel:
    """The model of a folder holding ``cameras.txt``, ``images.txt`` and ``points3D.txt``."""
    return ColmapModel(
        cameras=read_cameras_text(folder / "cameras.txt"),
        images=read_images_text(folder / "images.txt"),
        points3d=read_points3d_text(folder / "points3D.txt"),
    )


def read_any_model(folder: Path) -> ColmapModel:
    """The binary model of ``folder`` when it has ``cameras.bin``, else its text model."""
    if (folder / "cameras.bin").is_file():
        return read_model(folder)
    return read_text_model(folder)


def write_text_model(model: ColmapModel, folder: Path) -> None:
    """Write ``cameras.txt``, ``images.txt`` and ``points3D.txt`` (rigs and frames are left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    cameras = ["# Camera list: CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    for camera in model.cameras.values():
        params = " ".join(repr(float(p)) for p in camera.params)
        cameras.append(f"{camera.camera_id} {camera.model} {camera.width} {camera.height} {params}")
    images = ["# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "# POINTS2D[] (X, Y, ID)"]
    for image in model.images.values():
        pose = " ".join(repr(float(v)) for v in (*image.qvec, *image.tvec))
        images.append(f"{image.image_id} {pose} {image.camera_id} {image.name}")
        images.append(" ".join(_point2d_text(xy, pid) for xy, pid in _points_of(image)))
    points = ["# POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] (IMAGE_ID, POINT2D_IDX)"]
    p = model.points3d
    for i in range(len(p)):
        image_ids, idx = p.track(i)
        track = " ".join(f"{int(a)} {int(b)}" for a, b in zip(image_ids, idx, strict=True))
        xyz = " ".join(repr(float(v)) for v in p.xyz[i])
        rgb = " ".join(str(int(c)) for c in p.rgb[i])
        points.append(f"{int(p.ids[i])} {xyz} {rgb} {float(p.error[i])!r} {track}".rstrip())
    for name, rows in (("cameras.txt", cameras), ("images.txt", images), ("points3D.txt", points)):
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")


def _points_of(image: ColmapImage) -> Iterator[tuple[np.ndarray, np.uint64]]:
    yield from zip(image.points2d, image.point3d_ids, strict=True)


def _point2d_text(xy: np.ndarray, point_id: np.uint64) -> str:
    pid = -1 if point_id == INVALID_POINT3D_ID else int(point_id)
    return f"{float(xy[0])!r} {float(xy[1])!r} {pid}"
