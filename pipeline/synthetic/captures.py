"""The synthetic scene written as the capture layouts ``python -m pipeline train`` reads.

From a :class:`~pipeline.synthetic.SyntheticScene` (its exact, uncompressed frames and its
COLMAP model):

- :func:`write_colmap_project`: ``images/`` + ``sparse/0/`` (or ``sparse/``), binary or text;
  optionally images in sub-folders, every other view re-rendered with a portrait camera, and
  portrait views stored sideways with an EXIF orientation tag.
- :func:`write_nerfstudio_capture`: ``images/`` + ``transforms.json`` (+ ``sparse_pc.ply``).
- :func:`write_photos`: the frames alone, as a photo folder without poses.

Images are PNG (lossless), so every layout sees the same pixels.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, write_model, write_text_model
from pipeline.colmap.model import Points3D
from pipeline.nerfstudio import nerfstudio_transforms, write_sparse_ply
from pipeline.render.types import RenderSettings
from pipeline.synthetic.job import SyntheticScene
from pipeline.synthetic.render import FrameRenderer

__all__ = ["write_colmap_project", "write_nerfstudio_capture", "write_photos"]

#: EXIF tag 0x0112: 6 = stored rotated, turn 90° clockwise to view.
EXIF_ORIENTATION, ROTATE_CW = 0x0112, 6


def write_colmap_project(
    scene: SyntheticScene,
    root: Path,
    *,
    text: bool = False,
    sparse: str = "sparse/0",
    subfolders: bool = False,
    portrait_every: int = 0,
    exif_portraits: bool = False,
) -> ColmapModel:
    """Write ``root/images`` and the model in ``root/<sparse>``; returns the model written.

    Args:
        text: write ``*.txt`` instead of ``*.bin``.
        sparse: the model folder under ``root``.
        subfolders: put the images in two sub-folders (``a/``, ``b/``), named so in the model.
        portrait_every: re-render every N-th image with a portrait camera (camera 2: the
            landscape camera turned on its side, same focal length); 0 = none.
        exif_portraits: store those portrait images rotated 90° with EXIF orientation 6.
    """
    model = _project_model(scene, subfolders, portrait_every)
    images_dir = root / "images"
    renderer = _portrait_renderer(scene, model)
    for image in model.images.values():
        path = images_dir / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if image.camera_id == 2 and renderer is not None:
            pixels = renderer.render(torch.from_numpy(image.world_to_camera()))
            _save(pixels, path, sideways=exif_portraits)
        else:
            _save(scene.frames[_frame_index(scene, image)], path, sideways=False)
    (write_text_model if text else write_model)(model, root / sparse)
    return model


def write_nerfstudio_capture(scene: SyntheticScene, root: Path, *, points: bool = True) -> Path:
    """``root/images`` + ``root/transforms.json`` (+ ``sparse_pc.ply``); returns the JSON path."""
    model = _project_model(scene, subfolders=False, portrait_every=0)
    for image in model.images.values():
        (root / "images").mkdir(parents=True, exist_ok=True)
        _save(scene.frames[_frame_index(scene, image)], root / "images" / image.name, False)
    transforms = nerfstudio_transforms(model, "images")
    if points:
        write_sparse_ply(model, root / "sparse_pc.ply")
    else:
        del transforms["ply_file_path"]
    path = root / "transforms.json"
    path.write_text(json.dumps(transforms, indent=2), encoding="utf-8")
    return path


def write_photos(scene: SyntheticScene, root: Path, indices: list[int] | None = None) -> None:
    """The frames ``indices`` (default all) as ``root/<index:03d>.png``, no poses."""
    root.mkdir(parents=True, exist_ok=True)
    for index in indices if indices is not None else range(len(scene.frames)):
        _save(scene.frames[index], root / f"{index:03d}.png", sideways=False)


def _project_model(scene: SyntheticScene, subfolders: bool, portrait_every: int) -> ColmapModel:
    """The scene's model with PNG names (and sub-folders / a portrait camera as asked)."""
    cameras = dict(scene.model.cameras)
    if portrait_every:
        cameras[2] = _portrait_camera(cameras[1])
    images = {}
    for k, image in enumerate(scene.model.images.values()):
        stem = Path(image.name).stem
        name = f"{'ab'[k % 2]}/{stem}.png" if subfolders else f"{stem}.png"
        camera_id = 2 if portrait_every and k % portrait_every == 0 else image.camera_id
        images[image.image_id] = dataclasses.replace(
            image, name=name, camera_id=camera_id, points2d=np.zeros((0, 2)),
            point3d_ids=np.zeros(0, np.uint64),
        )  # fmt: skip
    points = dataclasses.replace(
        scene.model.points3d,
        track_offsets=np.zeros(len(scene.model.points3d) + 1, np.int64),
        track_image_ids=np.zeros(0, np.uint32),
        track_point2d_idx=np.zeros(0, np.uint32),
    )
    return ColmapModel(cameras, images, Points3D(**dataclasses.asdict(points)))


def _portrait_camera(camera: ColmapCamera) -> ColmapCamera:
    """The landscape pinhole camera turned on its side: width and height swapped."""
    fx, fy = camera.param("fx"), camera.param("fy")
    params = (fy, fx, camera.height / 2, camera.width / 2)
    return ColmapCamera(2, "PINHOLE", camera.height, camera.width, params)


def _portrait_renderer(scene: SyntheticScene, model: ColmapModel) -> FrameRenderer | None:
    if 2 not in model.cameras:
        return None
    return FrameRenderer(scene.gaussians, model.cameras[2], RenderSettings(sh_degree=0))


def _frame_index(scene: SyntheticScene, image: ColmapImage) -> int:
    for index in range(len(scene.frames)):
        if scene.image_name(index) == scene.model.images[image.image_id].name:
            return index
    raise KeyError(image.name)


def _save(pixels: NDArray[np.uint8], path: Path, sideways: bool) -> None:
    picture = Image.fromarray(pixels)
    if not sideways:
        picture.save(path)
        return
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_CW
    # Stored turned 90° counter-clockwise; orientation 6 turns it back clockwise for viewing.
    picture.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes())
