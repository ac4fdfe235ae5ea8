"""Export a job's data as a nerfstudio dataset (``refined/nerfstudio-data``), as the reference's
``ns-process-data images --skip-colmap`` writes it, so the same data can be trained or viewed
with nerfstudio.

Layout and conventions (nerfstudio 1.1.5 ``colmap_to_json``):

- ``transform_matrix``: camera-to-world in nerfstudio's world and OpenGL camera axes:
  ``c2w = inverse([R | t])``, columns 1 and 2 of the rotation negated (OpenCV → OpenGL), then
  rows reordered ``[0, 2, 1]`` with the new row 2 negated, i.e. the world turned by
  ``applied_transform = [[1,0,0,0],[0,0,1,0],[0,-1,0,0]]`` (``(x, y, z) ↦ (x, z, −y)``), which
  makes COLMAP's +y-down gravity nerfstudio's −z.
- Intrinsics at the top level when the model's only camera has id 1, else in every frame;
  ``camera_model`` is ``OPENCV`` (pinhole and radial/tangential models) or ``OPENCV_FISHEYE``.
- Frames in ``images.bin`` order with ``colmap_im_id``; ``sparse_pc.ply`` holds every 3D point in
  nerfstudio's world (ASCII, ``x y z`` float, ``red green blue`` uint8).
- Beyond nerfstudio's keys (it ignores unknown ones): ``scene_frame``, the capture's up axis and
  observed region in nerfstudio's world (:meth:`pipeline.scene_frame.SceneFrame.to_json`), the
  same frame the ``splat.ply`` header and the previews use.

Unlike the reference, frames are not copied: ``file_path`` points at ``Frames/`` relative to the
dataset folder (``../../Frames/<name>``), which nerfstudio resolves as ``data_dir / file_path``.
No ``images_2/4/8`` copies are made, so nerfstudio trains these at full resolution.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, read_model
from pipeline.contract import JobLayout
from pipeline.errors import UnsupportedCameraError
from pipeline.frames import check_image_name
from pipeline.scene_frame import SceneFrame, frame_from_model

__all__ = [
    "APPLIED_TRANSFORM",
    "camera_intrinsics_entry",
    "nerfstudio_c2w",
    "nerfstudio_transforms",
    "write_nerfstudio_data",
    "write_sparse_ply",
]

F64 = NDArray[np.float64]

# World of nerfstudio = APPLIED_TRANSFORM @ COLMAP world (3x4; rotation only).
APPLIED_TRANSFORM: Final = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0]])

# COLMAP model → (nerfstudio camera_model, nerfstudio key for each COLMAP parameter).
_INTRINSICS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "SIMPLE_PINHOLE": ("OPENCV", ("f", "cx", "cy")),
    "PINHOLE": ("OPENCV", ("fl_x", "fl_y", "cx", "cy")),
    "SIMPLE_RADIAL": ("OPENCV", ("f", "cx", "cy", "k1")),
    "RADIAL": ("OPENCV", ("f", "cx", "cy", "k1", "k2")),
    "OPENCV": ("OPENCV", ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2")),
    "OPENCV_FISHEYE": ("OPENCV_FISHEYE", ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "k3", "k4")),
    "SIMPLE_RADIAL_FISHEYE": ("OPENCV_FISHEYE", ("f", "cx", "cy", "k1")),
    "RADIAL_FISHEYE": ("OPENCV_FISHEYE", ("f", "cx", "cy", "k1", "k2")),
}
# Keys nerfstudio writes (as 0) when the COLMAP model lacks the coefficient.
_ZERO_KEYS: Final = {"OPENCV": ("k1", "k2", "p1", "p2"), "OPENCV_FISHEYE": ("k1", "k2", "k3", "k4")}


def nerfstudio_c2w(image: ColmapImage) -> F64:
    """``[4, 4]`` camera-to-world of ``image`` in nerfstudio's world, OpenGL camera axes."""
    c2w = np.linalg.inv(image.world_to_camera()).astype(np.float64)
    c2w[0:3, 1:3] *= -1
    c2w = c2w[[0, 2, 1, 3], :]
    c2w[2, :] *= -1
    return c2w


def camera_intrinsics_entry(camera: ColmapCamera) -> dict[str, Any]:
    """nerfstudio's intrinsics keys for ``camera`` (``w, h, fl_x, fl_y, cx, cy, k…, p…``).

    Raises:
        UnsupportedCameraError: nerfstudio cannot describe the model (e.g. ``FULL_OPENCV``).
    """
    if camera.model not in _INTRINSICS:
        raise UnsupportedCameraError(
            f"nerfstudio's transforms.json cannot describe camera {camera.camera_id}'s "
            f"{camera.model} model (supported: {', '.join(_INTRINSICS)})"
        )
    camera_model, keys = _INTRINSICS[camera.model]
    entry: dict[str, Any] = {"w": camera.width, "h": camera.height}
    for key, value in zip(keys, camera.params, strict=True):
        if key == "f":
            entry["fl_x"] = entry["fl_y"] = float(value)
        else:
            entry[key] = float(value)
    for key in _ZERO_KEYS[camera_model]:
        entry.setdefault(key, 0.0)
    entry["camera_model"] = camera_model
    return entry


def nerfstudio_transforms(
    model: ColmapModel, image_dir: str, frame: SceneFrame | None = None
) -> dict[str, Any]:
    """The ``transforms.json`` content; frames' ``file_path`` is ``<image_dir>/<image name>``.

    ``frame`` is the scene frame in the COLMAP world (estimated from ``model`` when ``None``).
    """
    single_camera = set(model.cameras) == {1}
    out: dict[str, Any] = camera_intrinsics_entry(model.cameras[1]) if single_camera else {}
    frames = []
    for image in model.images.values():
        entry: dict[str, Any] = {
            "file_path": f"{image_dir}/{check_image_name(image.name)}",
            "transform_matrix": nerfstudio_c2w(image).tolist(),
            "colmap_im_id": image.image_id,
        }
        if not single_camera:
            entry.update(camera_intrinsics_entry(model.cameras[image.camera_id]))
        frames.append(entry)
    out["frames"] = frames
    out["applied_transform"] = APPLIED_TRANSFORM.tolist()
    out["ply_file_path"] = "sparse_pc.ply"
    scene = frame if frame is not None else frame_from_model(model)
    out["scene_frame"] = scene.rotated(APPLIED_TRANSFORM[:, :3]).to_json()
    return out


def write_sparse_ply(model: ColmapModel, path: Path) -> None:
    """All 3D points in nerfstudio's world as an ASCII PLY (nerfstudio's ``sparse_pc.ply``)."""
    points = model.points3d
    rotation = APPLIED_TRANSFORM[:, :3].astype(np.float32)
    xyz = points.xyz.astype(np.float32) @ rotation.T
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uint8 red\nproperty uint8 green\nproperty uint8 blue\n"
        "end_header\n"
    )
    lines = [
        f"{x:8f} {y:8f} {z:8f} {r} {g} {b}\n"
        for (x, y, z), (r, g, b) in zip(xyz.tolist(), points.rgb.tolist(), strict=True)
    ]
    path.write_text(header + "".join(lines), encoding="utf-8")


def write_nerfstudio_data(
    job_root: Path, model: ColmapModel | None = None, frame: SceneFrame | None = None
) -> Path:
    """Write ``refined/nerfstudio-data/{transforms.json, sparse_pc.ply}``; returns the JSON path.

    ``file_path`` entries point at ``Frames/`` relative to the dataset folder (no copies);
    ``frame`` (COLMAP world) is estimated from the model when ``None``.
    """
    layout = JobLayout(job_root)
    model = model if model is not None else read_model(layout.model_dir)
    out_dir = layout.nerfstudio_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = Path(os.path.relpath(layout.frames_dir, out_dir)).as_posix()
    transforms = nerfstudio_transforms(model, image_dir, frame)
    write_sparse_ply(model, out_dir / "sparse_pc.ply")
    path = out_dir / "transforms.json"
    path.write_text(json.dumps(transforms, indent=4), encoding="utf-8")
    return path
