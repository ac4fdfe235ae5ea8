"""Rendering preview frames in-process with the training backend (one model load)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from pipeline.atomic import atomic_path
from pipeline.preview.camera_path import PathCamera
from pipeline.render.types import EVAL_BACKGROUND, Rasterizer, RenderSettings
from pipeline.splats import Splats

__all__ = ["FrameRenderer", "to_rgb8", "write_jpeg"]


def to_rgb8(rgb: torch.Tensor) -> NDArray[np.uint8]:
    """``[H, W, 3]`` colour in [0, 1] (clamped) → uint8 ``[H, W, 3]``, rounded."""
    scaled = rgb.detach().clamp(0.0, 1.0).mul(255.0).round()
    return np.ascontiguousarray(scaled.to("cpu", torch.uint8).numpy())


class FrameRenderer:
    """Renders one splat from preview cameras, as ns-render does for a trained model.

    The Gaussians are activated and moved to the backend's device once, here. Colour is
    ``rgb + (1 - alpha) · background`` with nerfstudio's viewer background and every stored
    SH band, clamped to [0, 1].

    Args:
        splats: the Gaussians, in the frame the cameras are in.
        rasterizer: the backend (``pipeline.render.get_rasterizer``).
        background: RGB in [0, 1].
        sh_degree: SH degree to evaluate; ``None`` uses all that ``splats`` stores.
    """

    def __init__(
        self,
        splats: Splats,
        rasterizer: Rasterizer,
        background: tuple[float, float, float] = EVAL_BACKGROUND,
        sh_degree: int | None = None,
    ) -> None:
        self.rasterizer = rasterizer
        self.gaussians = splats.detach().activated().to(rasterizer.device, torch.float32)
        degree = splats.sh_degree if sh_degree is None else min(sh_degree, splats.sh_degree)
        self.settings = RenderSettings(sh_degree=degree, background=background)

    def render(self, camera: PathCamera) -> NDArray[np.uint8]:
        """uint8 ``[height, width, 3]`` RGB image seen by ``camera``."""
        view = camera.to_render_camera(torch.float32)
        view = type(view)(
            view.world_to_camera.to(self.rasterizer.device), view.K.to(self.rasterizer.device),
            view.width, view.height,
        )  # fmt: skip
        with torch.no_grad():
            out = self.rasterizer.render(self.gaussians, view, self.settings)
        return to_rgb8(out.rgb)


def write_jpeg(path: Path, image: NDArray[np.uint8], quality: int = 90) -> Path:
    """Save uint8 ``[H, W, 3]`` RGB as JPEG (atomically: complete file or none)."""
    with atomic_path(path) as temp:
        Image.fromarray(image).save(temp, format="JPEG", quality=quality)
    return path
