"""Any detected capture → the training data (:class:`~pipeline.scene.SceneData`).

``colmap`` and ``nerfstudio`` captures are read in place; the ``auki`` job layout extracts its
frames into ``DATA/Frames`` first (as ``python -m pipeline run`` does); ``images`` and ``videos``
run structure from motion into ``OUT/sfm`` (:mod:`pipeline.captures.sfm`). Every layout then goes
through :func:`~pipeline.dataset.build_scene` (undistortion, EXIF orientation, downscaling, the
held-out split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.captures.detect import Capture
from pipeline.captures.nerfstudio_data import read_nerfstudio_data
from pipeline.captures.sfm import SfmOptions, reconstruct
from pipeline.colmap import ColmapModel, read_any_model
from pipeline.dataset import DatasetConfig, build_scene
from pipeline.frames import extract_frames
from pipeline.run import StageTracker, check_job_inputs
from pipeline.scene import SceneData

__all__ = ["PreparedCapture", "prepare_capture"]


@dataclass
class PreparedCapture:
    """The training data of a capture and what the report says about its input.

    Attributes:
        scene: views, points and up direction.
        inputs: ``layout``, ``source``, ``images`` (in the model), ``points`` and, after
            structure from motion, ``registered``, ``candidates`` and ``registered_fraction``.
    """

    scene: SceneData
    inputs: dict[str, Any] = field(default_factory=dict)


def prepare_capture(
    capture: Capture,
    out_dir: Path,
    dataset_config: DatasetConfig,
    tracker: StageTracker,
    sfm_options: SfmOptions | None = None,
) -> PreparedCapture:
    """Read (or reconstruct) the capture's poses and load its images.

    Raises:
        InputError: the capture is malformed (the file, and the line or record, are named).
        SfmError: structure from motion registered too few images.
        MissingExtraError: photos or videos without the ``sfm`` extra installed.
    """
    inputs: dict[str, Any] = {"layout": capture.kind, "source": str(capture.root)}
    model, images_dir = _model_and_images(capture, out_dir, tracker, inputs, sfm_options)
    with tracker.stage("dataset") as info:
        scene = build_scene(model, images_dir, dataset_config, tracker.progress)
        info.update(train_views=len(scene.train), eval_views=len(scene.eval))
        info.update(points=int(scene.points.shape[0]), layout=capture.kind)
    inputs.update(images=len(model.images), cameras=len(model.cameras), points=len(scene.points))
    return PreparedCapture(scene, inputs)


def _model_and_images(
    capture: Capture,
    out_dir: Path,
    tracker: StageTracker,
    inputs: dict[str, Any],
    sfm_options: SfmOptions | None,
) -> tuple[ColmapModel, Path]:
    if capture.kind == "colmap":
        assert capture.model_dir is not None and capture.images_dir is not None
        return read_any_model(capture.model_dir), capture.images_dir
    if capture.kind == "nerfstudio":
        assert capture.transforms is not None
        return read_nerfstudio_data(capture.transforms), capture.transforms.parent
    if capture.kind == "auki":
        return _auki(capture, tracker)
    result = reconstruct(capture, out_dir / "sfm", tracker, sfm_options)
    inputs.update(result.summary())
    return result.model, result.images_dir


def _auki(capture: Capture, tracker: StageTracker) -> tuple[ColmapModel, Path]:
    layout = check_job_inputs(capture.root)
    model = read_any_model(layout.model_dir)
    names = [image.name for image in model.images.values()]
    with tracker.stage("frames") as info:
        frames = extract_frames(layout.root, image_names=names, progress=tracker.progress)
        info.update(written=frames.total_written, existing=frames.existing)
    return model, layout.frames_dir
