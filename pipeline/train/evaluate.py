"""Held-out evaluation: mean PSNR and SSIM over views never trained on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.render.types import EVAL_BACKGROUND, Gaussians, Rasterizer, RenderSettings
from pipeline.train.loss import psnr, ssim
from pipeline.train.views import ViewSet

__all__ = ["EvalMetrics", "evaluate"]


@dataclass(frozen=True)
class EvalMetrics:
    """Means over the held-out views.

    Attributes:
        psnr: dB, of images in [0, 1].
        ssim: structural similarity (11-px Gaussian window), at most 1.
        views: how many views were evaluated.
    """

    psnr: float
    ssim: float
    views: int

    def to_dict(self) -> dict[str, float]:
        return {"psnr": self.psnr, "ssim": self.ssim, "views": self.views}


@torch.no_grad()
def evaluate(
    gaussians: Gaussians, views: ViewSet, rasterizer: Rasterizer, sh_degree: int
) -> EvalMetrics | None:
    """Render every view of ``views`` over the evaluation background and compare.

    Returns ``None`` when there are no views. Rendered colours are clamped to [0, 1].
    """
    if len(views) == 0:
        return None
    settings = RenderSettings(sh_degree=sh_degree, background=EVAL_BACKGROUND)
    psnrs, ssims = [], []
    for index in range(len(views)):
        camera, target = views.get(index)
        rendered = rasterizer.render(gaussians, camera, settings).rgb.clamp(0.0, 1.0)
        psnrs.append(psnr(rendered, target))
        ssims.append(float(ssim(rendered, target)))
    return EvalMetrics(sum(psnrs) / len(psnrs), sum(ssims) / len(ssims), len(psnrs))
