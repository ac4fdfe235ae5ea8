"""Step 2, dataset: the COLMAP model plus the extracted frames → :class:`~pipeline.scene.SceneData`.

Images are matched to model images by file name (never by id or file order), undistorted into
pinhole images when their camera has lens distortion, optionally downscaled, and split into
training and held-out views (by default the reference's split: nerfstudio's ``fraction`` mode,
pipeline-reference.md §3.2). Poses stay in the COLMAP world frame, cameras in OpenCV axes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, read_model
from pipeline.colmap.distortion import check_supported
from pipeline.contract import JobLayout
from pipeline.errors import InputError, MissingFramesError
from pipeline.frames import frame_path, sample_names
from pipeline.progress import NullProgress, ProgressSink
from pipeline.render.types import Camera
from pipeline.scene import SceneData, View
from pipeline.scene_frame import frame_from_model
from pipeline.undistort import PinholeIntrinsics, UndistortionPlan, plan_undistortion

__all__ = [
    "DatasetConfig",
    "build_scene",
    "downscale_factor",
    "load_scene",
    "split_eval",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetConfig:
    """How images become training data.

    Attributes:
        downscale: shrink every image by this integer factor (1 = full size). ``None`` uses
            ``max_side`` instead.
        max_side: with ``downscale=None``, the smallest power-of-two factor that brings the
            longer image side to at most this many pixels (the reference's 1600-px rule);
            ``None`` keeps full size.
        eval_every: ``None`` (default) splits as the reference (nerfstudio's ``fraction``
            mode): ``ceil(train_fraction · n)`` training images evenly spaced over the images
            in name order (``linspace``, first and last included), the rest held out. An
            integer ``N ≥ 1`` instead holds out every ``N``-th image, starting with the first
            (nerfstudio's ``interval`` mode); ``0`` holds out none. Held-out views are never
            trained on.
        train_fraction: share of the images trained on with ``eval_every=None`` (0, 1].
        workers: threads decoding and resampling images.
    """

    downscale: int | None = None
    max_side: int | None = 1600
    eval_every: int | None = None
    train_fraction: float = 0.9
    workers: int = 2

    def __post_init__(self) -> None:
        if self.downscale is not None and self.downscale < 1:
            raise ValueError(f"downscale must be ≥ 1, got {self.downscale}")
        if self.max_side is not None and self.max_side < 1:
            raise ValueError(f"max_side must be ≥ 1, got {self.max_side}")
        if self.eval_every is not None and self.eval_every < 0:
            raise ValueError(f"eval_every must be ≥ 0 or None, got {self.eval_every}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")


def downscale_factor(width: int, height: int, config: DatasetConfig) -> int:
    """The factor images of this size are shrunk by."""
    if config.downscale is not None:
        return config.downscale
    factor = 1
    if config.max_side is not None:
        while max(width, height) / factor > config.max_side:
            factor *= 2
    return factor


def split_eval(
    count: int, eval_every: int | None, train_fraction: float = 0.9
) -> tuple[list[int], list[int]]:
    """``(train, eval)`` indices of ``count`` images (see :class:`DatasetConfig`).

    ``eval_every=None`` reproduces nerfstudio's ``get_train_eval_split_fraction`` exactly,
    including its float arithmetic (``ceil(count · fraction)``, ``linspace`` cast to int).
    """
    if eval_every is None:
        train_count = math.ceil(count * train_fraction)
        train = sorted(set(np.linspace(0, count - 1, train_count, dtype=int).tolist()))
        return train, sorted(set(range(count)) - set(train))
    if eval_every == 0:
        return list(range(count)), []
    eval_ids = list(range(0, count, eval_every))
    return [i for i in range(count) if i % eval_every], eval_ids


def load_scene(
    job_root: Path, config: DatasetConfig | None = None, progress: ProgressSink | None = None
) -> SceneData:
    """Build the training data of a job folder (model in
    ``refined/global/refined_sfm_combined``, frames in ``Frames/``)."""
    layout = JobLayout(job_root)
    return build_scene(read_model(layout.model_dir), layout.frames_dir, config, progress)


def build_scene(
    model: ColmapModel,
    frames_dir: Path,
    config: DatasetConfig | None = None,
    progress: ProgressSink | None = None,
) -> SceneData:
    """Build the training data from a model and the folder holding its images.

    Raises:
        MissingFramesError: model images without a file in ``frames_dir`` (all are listed).
        UnsupportedCameraError: a camera model that cannot be undistorted (named).
        InputError: an image file that cannot be decoded or has the wrong size.
    """
    config = config or DatasetConfig()
    images = sorted(model.images.values(), key=lambda image: image.name)
    if not images:
        raise InputError("the COLMAP model has no registered images")
    _check_frames_exist(images, frames_dir)
    plans = _plan_cameras(model, images, config)
    loader = _ViewLoader(frames_dir, model.cameras, plans, len(images), progress)
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        views = list(pool.map(loader.load, images))
    train_ids, eval_ids = split_eval(len(views), config.eval_every, config.train_fraction)
    frame = frame_from_model(model)
    points = model.points3d
    return SceneData(
        train=[views[i] for i in train_ids],
        eval=[views[i] for i in eval_ids],
        points=torch.from_numpy(points.xyz.astype(np.float32)),
        point_colors=torch.from_numpy(points.rgb.astype(np.uint8)),
        frame=frame,
    )


def _check_frames_exist(images: Sequence[ColmapImage], frames_dir: Path) -> None:
    missing = [i.name for i in images if not frame_path(frames_dir, i.name).is_file()]
    if missing:
        raise MissingFramesError(
            f"{len(missing)} of {len(images)} model images have no frame in {frames_dir}: "
            f"{sample_names(missing)}",
            missing,
        )


@dataclass(frozen=True)
class _CameraPlan:
    undistortion: UndistortionPlan
    output: PinholeIntrinsics


def _plan_cameras(
    model: ColmapModel, images: Sequence[ColmapImage], config: DatasetConfig
) -> dict[int, _CameraPlan]:
    plans = {}
    for camera_id in sorted({image.camera_id for image in images}):
        camera = model.cameras[camera_id]
        check_supported(camera)
        undistortion = plan_undistortion(camera)
        factor = downscale_factor(camera.width, camera.height, config)
        size = (max(1, round(camera.width / factor)), max(1, round(camera.height / factor)))
        plans[camera_id] = _CameraPlan(undistortion, undistortion.pinhole.scaled_to(*size))
        if undistortion.source_u is not None:
            log.info("camera %d (%s) is undistorted to a pinhole", camera_id, camera.model)
    return plans


class _ViewLoader:
    """Decodes, undistorts and resizes one image per call (thread-safe)."""

    def __init__(
        self,
        frames_dir: Path,
        cameras: dict[int, ColmapCamera],
        plans: dict[int, _CameraPlan],
        total: int,
        progress: ProgressSink | None,
    ) -> None:
        self.frames_dir, self.cameras, self.plans, self.total = frames_dir, cameras, plans, total
        self.progress = progress or NullProgress()
        self.done = 0
        self.lock = threading.Lock()

    def load(self, image: ColmapImage) -> View:
        camera = self.cameras[image.camera_id]
        plan = self.plans[image.camera_id]
        pixels = plan.undistortion.apply(_read_rgb(frame_path(self.frames_dir, image.name), camera))
        out = plan.output
        if (out.width, out.height) != (camera.width, camera.height):
            resized = Image.fromarray(pixels).resize((out.width, out.height), Image.Resampling.BOX)
            pixels = np.asarray(resized)
        view = View(image.name, _pinhole_camera(image, out), torch.from_numpy(pixels.copy()))
        with self.lock:
            self.done += 1
            pct = 100.0 * self.done / self.total
            self.progress.progress("dataset", pct, images=self.done, total=self.total)
        return view


def _read_rgb(path: Path, camera: ColmapCamera) -> NDArray[np.uint8]:
    """The image's pixels as stored; when that size does not match its camera but the
    EXIF-oriented image does (a phone photo stored sideways), the oriented pixels."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
            height, width = pixels.shape[:2]
            if (width, height) != (camera.width, camera.height):
                oriented = ImageOps.exif_transpose(image)
                if oriented is not None and oriented.size == (camera.width, camera.height):
                    return np.asarray(oriented.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot decode frame {path}: {exc}") from exc
    if (width, height) != (camera.width, camera.height):
        raise InputError(
            f"frame {path} is {width}x{height}, but its camera {camera.camera_id} in the model "
            f"is {camera.width}x{camera.height}"
        )
    return pixels


def _pinhole_camera(image: ColmapImage, intrinsics: PinholeIntrinsics) -> Camera:
    return Camera(
        world_to_camera=torch.from_numpy(image.world_to_camera().astype(np.float32)),
        K=torch.from_numpy(intrinsics.matrix().astype(np.float32)),
        width=intrinsics.width,
        height=intrinsics.height,
    )
