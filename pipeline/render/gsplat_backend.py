"""The ``gsplat`` backend: gsplat 1.5.3's CUDA ``rasterization`` behind our interface.

gsplat renders batches of cameras; this wrapper renders one and strips the camera axis. Its
``means2d`` (``meta["means2d"]``, ``[1, N, 2]``) is what the rasterizer differentiates, so the
``[N, 2]`` view returned in :class:`RenderOutput` receives that tensor's gradient (and
``absgrad``) through a hook: ``out.means2d.retain_grad()`` then behaves as on the ``cpu`` backend.

Differences from the ``cpu`` backend, all gsplat's own: float32 only; ``radii`` use gsplat's
opacity-aware extent (``min(3.33, sqrt(2 ln(255 · opacity)))`` standard deviations, 0 below
opacity 1/255); and culled Gaussians have ``means2d = 0`` and ``depths = 0``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from pipeline.errors import BackendUnavailableError
from pipeline.render.types import BackendName, Camera, Gaussians, RenderOutput, RenderSettings
from pipeline.render.validation import check_render_inputs

__all__ = ["GsplatRasterizer", "load_gsplat_rasterization"]

SUPPORTED_GSPLAT = "1.5."


def load_gsplat_rasterization() -> Callable[..., Any]:
    """gsplat's ``rasterization`` function, or :class:`BackendUnavailableError` saying why not."""
    if not torch.cuda.is_available():
        raise BackendUnavailableError("GPU backend unavailable: CUDA is not available")
    try:
        import gsplat
        from gsplat.cuda._backend import _C
    except Exception as exc:  # ImportError, or OSError/RuntimeError from building the extension
        raise BackendUnavailableError(
            f"GPU backend unavailable: cannot import gsplat ({type(exc).__name__}: {exc})"
        ) from exc
    version = str(getattr(gsplat, "__version__", "unknown"))
    if not version.startswith(SUPPORTED_GSPLAT):
        raise BackendUnavailableError(
            f"GPU backend unavailable: needs gsplat {SUPPORTED_GSPLAT}x, found {version}"
        )
    if _C is None:
        raise BackendUnavailableError(
            "GPU backend unavailable: gsplat's CUDA extension is not built or failed to load"
        )
    rasterization: Callable[..., Any] = gsplat.rasterization
    return rasterization


class GsplatRasterizer:
    """Differentiable CUDA rasterizer (gsplat ``rasterization``, classic mode, unpacked).

    Raises:
        BackendUnavailableError: at construction, when CUDA or gsplat's extension is missing.
    """

    name: BackendName = "gsplat"

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self._rasterization = load_gsplat_rasterization()
        self._device = torch.device(device)

    @property
    def device(self) -> torch.device:
        return self._device

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        """Render one view (see :class:`~pipeline.render.types.Rasterizer`)."""
        check_render_inputs(gaussians, camera, settings)
        _check_cuda_float32(gaussians)
        if len(gaussians) == 0:
            return _empty_render(gaussians, camera, settings)
        device, dtype = gaussians.means.device, gaussians.means.dtype
        colors, alphas, meta = self._rasterization(
            means=gaussians.means,
            quats=gaussians.quats,
            scales=gaussians.scales,
            opacities=gaussians.opacities,
            colors=gaussians.sh,
            viewmats=camera.world_to_camera.to(device, dtype).unsqueeze(0),
            Ks=camera.K.to(device, dtype).unsqueeze(0),
            width=camera.width,
            height=camera.height,
            near_plane=settings.near_plane,
            far_plane=settings.far_plane,
            eps2d=settings.eps2d,
            sh_degree=settings.sh_degree,
            packed=False,
            backgrounds=torch.tensor([settings.background], device=device, dtype=dtype),
            render_mode="RGB+D",
            absgrad=settings.absgrad,
            rasterize_mode="classic",
        )
        return RenderOutput(
            rgb=colors[0, ..., :3],
            alpha=alphas[0],
            depth=colors[0, ..., 3:4],
            means2d=_per_camera_view(meta["means2d"]),
            radii=meta["radii"][0].to(torch.int32),
            depths=meta["depths"][0],
        )


def _check_cuda_float32(gaussians: Gaussians) -> None:
    means = gaussians.means
    if means.device.type != "cuda":
        raise ValueError(f"the gsplat backend needs CUDA tensors, got {means.device}")
    if means.dtype != torch.float32:
        raise ValueError(f"the gsplat backend needs float32 Gaussians, got {means.dtype}")


def _empty_render(gaussians: Gaussians, camera: Camera, settings: RenderSettings) -> RenderOutput:
    """The background, without calling gsplat (its kernels are not meant for zero Gaussians).

    The images still hang off the (empty) inputs, so that ``backward()`` runs as usual.
    """
    means = gaussians.means
    anchor = sum((t.sum() for t in gaussians._tensors()), means.new_zeros(())) * 0.0
    shape = (camera.height, camera.width)
    background = torch.tensor(settings.background, device=means.device, dtype=means.dtype)
    return RenderOutput(
        rgb=background.expand(*shape, 3) + anchor,
        alpha=means.new_zeros((*shape, 1)) + anchor,
        depth=means.new_zeros((*shape, 1)) + anchor,
        means2d=means.new_zeros((0, 2)) + anchor,
        radii=torch.zeros((0, 2), dtype=torch.int32, device=means.device),
        depths=means.new_zeros((0,)) + anchor,
    )


def _per_camera_view(means2d: Tensor) -> Tensor:
    """``means2d[0]`` whose ``.grad`` / ``.absgrad`` mirror those of gsplat's ``[1, N, 2]``.

    gsplat composites from ``means2d`` itself, so a view taken afterwards is off the gradient
    path; a hook on ``means2d`` hands its gradient (and gsplat's ``absgrad``, set just before)
    to the view when the view retains gradients.
    """
    view = means2d[0]
    if not means2d.requires_grad:
        return view
    view_ref = weakref.ref(view)

    def deliver(grad: Tensor) -> None:
        target = view_ref()
        if target is None:
            return
        absgrad = getattr(means2d, "absgrad", None)
        if absgrad is not None:
            target.absgrad = absgrad[0]  # type: ignore[attr-defined]
        if target.retains_grad:
            target.grad = grad[0] if target.grad is None else target.grad + grad[0]

    means2d.register_hook(deliver)  # type: ignore[no-untyped-call]
    return view
