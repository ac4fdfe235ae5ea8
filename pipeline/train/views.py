"""Training and evaluation images at the resolutions the recipe asks for, and the view order.

Images are shrunk by an integer factor with a box filter (each output pixel the mean of a
``d × d`` block, the last partial row/column dropped) and the intrinsics divided by the same
factor, so a pixel centre ``(j + 0.5) d`` of the original maps to ``j + 0.5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import InputError
from pipeline.render.types import Camera
from pipeline.scene import View

__all__ = ["ViewOrder", "ViewSet", "auto_downscale", "shrink_camera", "shrink_image"]


def auto_downscale(views: list[View], max_side: int) -> int:
    """Smallest power of two that brings every image's longer side to ≤ ``max_side`` pixels."""
    longest = max((max(v.camera.width, v.camera.height) for v in views), default=1)
    factor = 1
    while longest / factor > max_side:
        factor *= 2
    return factor


def shrink_camera(camera: Camera, factor: int) -> Camera:
    """The camera of an image shrunk by ``factor`` with :func:`shrink_image`."""
    if factor == 1:
        return camera
    K = camera.K.clone()
    K[:2] /= factor
    return Camera(camera.world_to_camera, K, camera.width // factor, camera.height // factor)


def shrink_image(image: Tensor, factor: int) -> Tensor:
    """``[H, W, C]`` float image → ``[H // f, W // f, C]`` block means."""
    if factor == 1:
        return image
    pooled = F.avg_pool2d(image.permute(2, 0, 1).unsqueeze(0), factor, stride=factor)
    return pooled.squeeze(0).permute(1, 2, 0)


class ViewSet:
    """Views at the training resolution, kept on ``device`` as uint8.

    Args:
        views: the scene's views (training or held-out).
        downscale: factor from the original images to the training resolution.
        device: where images are kept and returned.
    """

    def __init__(self, views: list[View], downscale: int, device: torch.device) -> None:
        for view in views:
            _check_view(view)
        self.downscale = downscale
        self.cameras = [shrink_camera(v.camera, downscale) for v in views]
        self.images = [_base_image(v, downscale).to(device) for v in views]

    def __len__(self) -> int:
        return len(self.images)

    def get(self, index: int, divisor: int = 1) -> tuple[Camera, Tensor]:
        """View ``index`` rendered ``divisor`` times smaller: camera and ``[H, W, 3]`` float."""
        image = self.images[index].float() / 255.0
        divisor = max(1, min(divisor, image.shape[0], image.shape[1]))
        return shrink_camera(self.cameras[index], divisor), shrink_image(image, divisor)


def _check_view(view: View) -> None:
    expected = (view.camera.height, view.camera.width, 3)
    if tuple(view.image.shape) != expected or view.image.dtype != torch.uint8:
        raise InputError(
            f"view {view.name!r}: image is {view.image.dtype} {list(view.image.shape)}, "
            f"expected uint8 {list(expected)} to match its camera"
        )


def _base_image(view: View, downscale: int) -> Tensor:
    if downscale == 1:
        return view.image.detach().cpu().clone()
    small = shrink_image(view.image_float(), downscale)
    return torch.round(small * 255.0).to(torch.uint8)


class ViewOrder:
    """Which training view each step uses: every view once per epoch, in a seeded order.

    The order is a pure function of ``(seed, step)``, so a resumed run visits the same views.
    """

    def __init__(self, num_views: int, seed: int) -> None:
        self.num_views = num_views
        self.seed = seed
        self._epoch = -1
        self._order: list[int] = []

    def view_at(self, step: int) -> int:
        """Index of the view trained on at 0-based ``step``."""
        epoch, position = divmod(step, self.num_views)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.num_views, generator=generator).tolist()
            self._epoch = epoch
        return self._order[position]
