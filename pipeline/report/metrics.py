"""Per-view quality of a trained splat on the held-out views, and a flat-image baseline.

Views are rendered exactly as :func:`pipeline.train.evaluate.evaluate` renders them (the
training resolution, the final SH degree, the evaluation background, colours clamped to
[0, 1]), so the means here equal the trainer's held-out metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.render.types import EVAL_BACKGROUND, Rasterizer, RenderSettings
from pipeline.scene import SceneData
from pipeline.splats import Splats
from pipeline.train.config import TrainConfig
from pipeline.train.loss import psnr, ssim
from pipeline.train.schedules import sh_degree_at
from pipeline.train.views import ViewSet, auto_downscale

__all__ = ["ViewQuality", "flat_psnr", "view_quality"]


@dataclass
class ViewQuality:
    """One held-out view.

    Attributes:
        name: the image name.
        psnr: dB.
        ssim: structural similarity.
        truth: ``[H, W, 3]`` uint8 ground truth at the training resolution.
        render: ``[H, W, 3]`` uint8 render of the same camera.
    """

    name: str
    psnr: float
    ssim: float
    truth: NDArray[np.uint8]
    render: NDArray[np.uint8]


@torch.no_grad()
def view_quality(
    splats: Splats, scene: SceneData, rasterizer: Rasterizer, config: TrainConfig
) -> list[ViewQuality]:
    """Render and score every held-out view of ``scene`` (empty without held-out views)."""
    if not scene.eval:
        return []
    downscale = config.downscale or auto_downscale(scene.train + scene.eval, config.max_image_side)
    views = ViewSet(scene.eval, downscale, rasterizer.device)
    device = rasterizer.device
    gaussians = Splats(*(t.detach().to(device) for t in splats.tensors())).activated()
    settings = RenderSettings(
        sh_degree=sh_degree_at(config, config.steps), background=EVAL_BACKGROUND
    )
    results = []
    for index, view in enumerate(scene.eval):
        camera, target = views.get(index)
        rendered = rasterizer.render(gaussians, camera, settings).rgb.clamp(0.0, 1.0)
        results.append(
            ViewQuality(
                name=view.name,
                psnr=psnr(rendered, target),
                ssim=float(ssim(rendered, target)),
                truth=_to_uint8(target),
                render=_to_uint8(rendered),
            )
        )
    return results


def flat_psnr(scene: SceneData, views: list[ViewQuality]) -> float | None:
    """Mean PSNR over the held-out views of one flat image: the training images' mean colour
    (what a splat must beat to have learnt anything)."""
    if not views or not scene.train:
        return None
    colour = torch.stack([v.image.double().mean(dim=(0, 1)) for v in scene.train]).mean(0) / 255.0
    values = []
    for view in views:
        truth = torch.from_numpy(view.truth).double() / 255.0
        mse = float(((truth - colour) ** 2).mean())
        values.append(10.0 * math.log10(1.0 / max(mse, 1e-10)))
    return sum(values) / len(values)


def _to_uint8(image: torch.Tensor) -> NDArray[np.uint8]:
    return np.asarray((image.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy())
