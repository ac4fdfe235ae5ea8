"""The training data handed from the dataset step to the trainer.

Frames: every pose is in the COLMAP world frame (the frame of ``points3D.bin``), cameras use the
OpenCV convention (see :mod:`pipeline.render.types`). Units are the reconstruction's (metres for
Auki's refined models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.render.types import Camera
from pipeline.scene_frame import SceneFrame

__all__ = ["SceneData", "View"]


@dataclass
class View:
    """One undistorted image and the pinhole camera that took it.

    Attributes:
        name: the image name as in ``images.bin`` (e.g. ``"2024-01-02_03-04-05_000012.jpg"``).
        camera: pinhole camera whose ``width``/``height`` equal the image's.
        image: ``[H, W, 3]`` uint8 RGB (kept as bytes; the trainer converts per step).
    """

    name: str
    camera: Camera
    image: Tensor

    def image_float(self, device: torch.device | str = "cpu") -> Tensor:
        """The image as ``[H, W, 3]`` float32 in [0, 1]."""
        return self.image.to(device=device, dtype=torch.float32) / 255.0


@dataclass
class SceneData:
    """Everything the trainer needs.

    Attributes:
        train: views to optimise on.
        eval: held-out views (every Nth image), never trained on; empty if hold-out is off.
        points: ``[P, 3]`` float32 SfM points (world), the Gaussians' initial centres.
        point_colors: ``[P, 3]`` uint8 RGB of the points.
        frame: the world's up axis and the observed region, estimated from the cameras and
            the points (:func:`pipeline.scene_frame.frame_from_model`); orients the exported
            files and frames the previews.
    """

    train: list[View]
    eval: list[View]
    points: Tensor
    point_colors: Tensor
    frame: SceneFrame
