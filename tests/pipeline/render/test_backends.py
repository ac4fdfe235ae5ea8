"""Backend selection, input validation, thread control and the gsplat wrapper's means2d."""

from __future__ import annotations

import dataclasses
from typing import Any

import numba
import pytest
import torch
from torch import Tensor

from pipeline.errors import BackendUnavailableError
from pipeline.render import DenseRasterizer, TileRasterizer, get_rasterizer, kernels, warm_up
from pipeline.render.gsplat_backend import GsplatRasterizer, _empty_render, _per_camera_view
from pipeline.render.types import Gaussians, RenderSettings
from tests.pipeline.render.factories import look_at_camera, random_gaussians

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
CAMERA = look_at_camera((0.0, 0.0, -3.0), width=20, height=12)


def test_cpu_choice_is_the_tile_rasterizer() -> None:
    rasterizer = get_rasterizer("cpu")
    assert isinstance(rasterizer, TileRasterizer)
    assert rasterizer.name == "cpu" and rasterizer.device == torch.device("cpu")


@needs_no_cuda
def test_auto_falls_back_to_cpu_without_cuda() -> None:
    assert isinstance(get_rasterizer("auto"), TileRasterizer)
    assert isinstance(get_rasterizer(), TileRasterizer)


@needs_no_cuda
def test_gsplat_without_cuda_says_the_gpu_backend_is_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match=r"^GPU backend unavailable: CUDA is not"):
        get_rasterizer("gsplat")
    with pytest.raises(BackendUnavailableError, match=r"^GPU backend unavailable"):
        GsplatRasterizer()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_prefers_gsplat_with_cuda() -> None:
    rasterizer = get_rasterizer("auto")
    assert isinstance(rasterizer, GsplatRasterizer) and rasterizer.device.type == "cuda"


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown rasterizer backend 'vulkan'"):
        get_rasterizer("vulkan")  # type: ignore[arg-type]


def test_dense_oracle_stays_importable() -> None:
    out = DenseRasterizer().render(random_gaussians(5), CAMERA, RenderSettings())
    assert out.rgb.shape == (12, 20, 3)


def _with(gaussians: Gaussians, **changes: Tensor) -> Gaussians:
    return dataclasses.replace(gaussians, **changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"means": torch.zeros(6, 2)}, r"Gaussians.means must have shape \[6, 3\], got \[6, 2\]"),
        ({"opacities": torch.zeros(6, 1)}, r"Gaussians.opacities must have shape \[6\]"),
        ({"sh": torch.zeros(6, 4, 3)}, r"Gaussians.sh must have shape \[6, K ≥ 16, 3\]"),
        ({"scales": torch.zeros(6, 3, dtype=torch.float32)}, "share one floating dtype"),
    ],
)
def test_malformed_gaussians_are_rejected(change: dict[str, Tensor], message: str) -> None:
    gaussians = _with(random_gaussians(6), **change)
    with pytest.raises(ValueError, match=message):
        TileRasterizer().render(gaussians, CAMERA, RenderSettings())


def test_half_precision_is_rejected() -> None:
    gaussians = random_gaussians(6).to("cpu", torch.float16)
    with pytest.raises(ValueError, match=r"must be float32 or float64, got torch\.float16"):
        TileRasterizer().render(gaussians, CAMERA, RenderSettings())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (RenderSettings(near_plane=0.0), "need 0 < near_plane < far_plane"),
        (RenderSettings(near_plane=2.0, far_plane=1.0), "need 0 < near_plane < far_plane"),
        (RenderSettings(sh_degree=4), "SH degree must be 0..3, got 4"),
        (RenderSettings(eps2d=-1.0), "eps2d must be ≥ 0"),
    ],
)
def test_bad_settings_are_rejected(settings: RenderSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TileRasterizer().render(random_gaussians(3), CAMERA, settings)


def test_empty_image_is_rejected() -> None:
    camera = dataclasses.replace(CAMERA, width=0)
    with pytest.raises(ValueError, match="image size must be positive, got 0x12"):
        TileRasterizer().render(random_gaussians(3), camera, RenderSettings())


def test_numba_threads_follow_torch() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        TileRasterizer().render(random_gaussians(10), CAMERA, RenderSettings())
        assert numba.get_num_threads() == 1
        pool: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        torch.set_num_threads(min(2, pool))
        TileRasterizer().render(random_gaussians(10), CAMERA, RenderSettings())
        assert numba.get_num_threads() == min(2, pool)
    finally:
        torch.set_num_threads(before)


class _SetsAbsgrad(torch.autograd.Function):
    """Stands in for gsplat's compositing: ``sum(x**2)`` that sets ``x.absgrad`` in backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return (x**2).sum()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        grad_x: Tensor = 2 * x * grad
        x.absgrad = grad_x.abs() + 1.0
        return grad_x


def test_gsplat_means2d_view_receives_grad_and_absgrad() -> None:
    leaf = torch.randn(1, 7, 2, requires_grad=True)
    means2d = leaf * 3.0  # like gsplat's meta["means2d"]: [1, N, 2], inside the graph
    loss = _SetsAbsgrad.apply(means2d)
    view = _per_camera_view(means2d)
    view.retain_grad()
    loss.backward()
    expected = 2 * means2d.detach()[0]
    assert view.grad is not None and torch.allclose(view.grad, expected)
    assert torch.allclose(view.absgrad, expected.abs() + 1.0)  # type: ignore[attr-defined]
    assert leaf.grad is not None and torch.allclose(leaf.grad, 3.0 * 2 * means2d.detach())


def test_gsplat_empty_scene_is_the_background_and_differentiable() -> None:
    """gsplat is never called with zero Gaussians; the wrapper's stand-in runs on any device."""
    gaussians = random_gaussians(0)
    for t in gaussians._tensors():
        t.requires_grad_(True)
    settings = RenderSettings(background=(0.1, 0.2, 0.3))
    out = _empty_render(gaussians, CAMERA, settings)
    assert torch.equal(
        out.rgb, torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).expand(12, 20, 3)
    )
    assert not out.alpha.any() and out.alpha.shape == (12, 20, 1) and out.depth.shape == (12, 20, 1)
    assert out.radii.shape == (0, 2) and out.radii.dtype == torch.int32
    out.rgb.sum().backward()
    assert gaussians.sh.grad is not None and gaussians.sh.grad.shape == (0, 16, 3)


def test_warm_up_leaves_every_kernel_compiled() -> None:
    warm_up((torch.float32, torch.float64))
    dispatchers: list[Any] = [kernels.prepare, kernels.box_tile_counts, kernels.list_tiles,
                   kernels.group_by_tile, kernels.composite_forward, kernels.composite_backward,
                   kernels.sum_per_gaussian]  # fmt: skip
    assert all(d.signatures for d in dispatchers)
    signatures: list[tuple[Any, ...]] = kernels.prepare.signatures
    input_dtypes = {str(sig[0].dtype) for sig in signatures}
    assert {"float32", "float64"} <= input_dtypes
