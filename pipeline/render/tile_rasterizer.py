"""The ``cpu`` backend: this project's differentiable tile rasterizer.

Steps: EWA projection and SH colours in torch (autograd differentiates them); per-Gaussian
footprint constants and tile binning (:mod:`pipeline.render.tiles`); front-to-back compositing
per 16×16 tile, forward and backward, in numba kernels (:mod:`pipeline.render.kernels`) wrapped
in one autograd function (:mod:`pipeline.render.composite`). The result follows the compositing
contract of :mod:`pipeline.render.dense` exactly.
"""

from __future__ import annotations

import torch

from pipeline.render.composite import composite_tiles, prepare_footprints
from pipeline.render.dense import view_colors
from pipeline.render.projection import project
from pipeline.render.tiles import bin_gaussians
from pipeline.render.types import BackendName, Camera, Gaussians, RenderOutput, RenderSettings
from pipeline.render.validation import check_render_inputs

__all__ = ["TileRasterizer", "warm_up"]


class TileRasterizer:
    """Differentiable CPU rasterizer (float32 for production, float64 for tests).

    Tensors must live on the CPU. Gradients reach every tensor of :class:`Gaussians` and the
    returned ``means2d`` (call ``means2d.retain_grad()``); with ``RenderSettings.absgrad`` the
    backward pass also sets ``means2d.absgrad``. Numba's thread count follows
    ``torch.get_num_threads()``.
    """

    name: BackendName = "cpu"

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        """Render one view (see :class:`~pipeline.render.types.Rasterizer`)."""
        check_render_inputs(gaussians, camera, settings)
        if gaussians.means.device.type != "cpu":
            raise ValueError(f"the cpu backend needs CPU tensors, got {gaussians.means.device}")
        proj = project(gaussians, camera, settings.eps2d, settings.near_plane, settings.far_plane)
        colors = view_colors(gaussians, camera, settings.sh_degree)
        visible = (proj.radii > 0).all(dim=-1)
        features = torch.cat([colors, proj.depths.unsqueeze(-1)], dim=-1)
        inputs = (proj.means2d, proj.conics, gaussians.opacities, features)
        prepared = prepare_footprints(*inputs)
        bins = bin_gaussians(prepared, proj.depths, visible, camera.width, camera.height)
        accumulated, alpha = composite_tiles(
            *inputs, prepared, bins, camera.width, camera.height, settings.absgrad
        )
        background = torch.tensor(settings.background, dtype=accumulated.dtype)
        rgb = accumulated[..., :3] + (1.0 - alpha) * background
        depth = accumulated[..., 3:4]
        return RenderOutput(rgb, alpha, depth, proj.means2d, proj.radii, proj.depths)


def warm_up(dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> None:
    """Compile (or load from numba's on-disk cache) every kernel, forward and backward.

    The first render in a fresh checkout otherwise spends tens of seconds compiling; call this
    where that time is better spent up front (an image build, a worker's start-up).
    """
    for dtype in dtypes:
        one = Gaussians(
            means=torch.tensor([[0.0, 0.0, 2.0]], dtype=dtype),
            quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=dtype),
            scales=torch.full((1, 3), 0.2, dtype=dtype),
            opacities=torch.tensor([0.5], dtype=dtype, requires_grad=True),
            sh=torch.zeros(1, 1, 3, dtype=dtype),
        )
        K = torch.tensor([[20.0, 0.0, 8.0], [0.0, 20.0, 8.0], [0.0, 0.0, 1.0]], dtype=dtype)
        camera = Camera(torch.eye(4, dtype=dtype), K, 16, 16)
        out = TileRasterizer().render(one, camera, RenderSettings(sh_degree=0, absgrad=True))
        out.rgb.sum().backward()  # type: ignore[no-untyped-call]
