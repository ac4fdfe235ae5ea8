"""Differentiable per-tile compositing: a ``torch.autograd.Function`` over the numba kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.render import kernels
from pipeline.render.threads import TILE_CHUNK, kernel_threads
from pipeline.render.tiles import TileBins

__all__ = ["composite_tiles", "prepare_footprints"]


def prepare_footprints(
    means2d: Tensor, conics: Tensor, opacities: Tensor, features: Tensor
) -> np.ndarray[Any, Any]:
    """Per-Gaussian constants ``[N, PREPARED_COLUMNS]`` float64 for binning and compositing.

    Args:
        means2d: ``[N, 2]`` screen centres, pixels.
        conics: ``[N, 3]`` inverse 2D covariances ``(a, b, c)``.
        opacities: ``[N]``.
        features: ``[N, 4]`` per-Gaussian r, g, b and camera depth.
    """
    arrays = [_numpy(t) for t in (means2d, conics, opacities, features)]
    with kernel_threads():
        prepared: np.ndarray[Any, Any] = kernels.prepare(*arrays)
    return prepared


def composite_tiles(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    features: Tensor,
    prepared: np.ndarray[Any, Any],
    bins: TileBins,
    width: int,
    height: int,
    absgrad: bool = False,
) -> tuple[Tensor, Tensor]:
    """Composite binned Gaussians front to back (the rules of :mod:`pipeline.render.dense`).

    Args:
        means2d: ``[N, 2]`` screen centres, pixels.
        conics: ``[N, 3]`` inverse 2D covariances ``(a, b, c)``.
        opacities: ``[N]``.
        features: ``[N, 4]`` per-Gaussian r, g, b and camera depth; its dtype (float32 or
            float64) is the dtype of the outputs.
        prepared: :func:`prepare_footprints` of these four tensors (the kernels read it).
        bins: which Gaussians each tile composites, nearest first.
        width, height: image size in pixels.
        absgrad: during backward, also set ``means2d.absgrad`` ``[N, 2]`` to the sums over
            pixels of ``|d loss / d means2d|`` (per pixel, per axis), like gsplat's.

    Returns:
        ``features [H, W, 4]`` (``Σ w_i f_i``) and ``alpha [H, W, 1]`` (``1 - T_final``),
        differentiable w.r.t. the four per-Gaussian inputs.
    """
    out: tuple[Tensor, Tensor] = _TileComposite.apply(  # type: ignore[no-untyped-call]
        means2d, conics, opacities, features, prepared, bins, width, height, absgrad
    )
    return out


def _numpy(t: Tensor) -> np.ndarray[Any, Any]:
    return t.detach().contiguous().numpy()


class _TileComposite(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        means2d: Tensor,
        conics: Tensor,
        opacities: Tensor,
        features: Tensor,
        prepared: np.ndarray[Any, Any],
        bins: TileBins,
        width: int,
        height: int,
        absgrad: bool,
    ) -> tuple[Tensor, Tensor]:
        features_out = np.empty((height, width, 4), dtype=np.float64)
        transmittance = np.empty((height, width), dtype=np.float64)
        n_stop = np.empty((height, width), dtype=np.int32)
        with kernel_threads(TILE_CHUNK):
            kernels.composite_forward(
                prepared, bins.gaussian_ids.numpy(), bins.tile_offsets.numpy(), bins.tiles_x,
                features_out, transmittance, n_stop,
            )  # fmt: skip
        ctx.save_for_backward(means2d)
        ctx.prepared, ctx.bins, ctx.absgrad = prepared, bins, absgrad
        ctx.transmittance, ctx.n_stop = transmittance, n_stop
        dtype = features.dtype
        alpha = torch.from_numpy(1.0 - transmittance).to(dtype).unsqueeze(-1)
        return torch.from_numpy(features_out).to(dtype), alpha

    @staticmethod
    def backward(ctx: Any, grad_features: Tensor, grad_alpha: Tensor) -> tuple[Tensor | None, ...]:
        (means2d,) = ctx.saved_tensors
        bins: TileBins = ctx.bins
        grad_isect = np.zeros((bins.num_intersections, kernels.GRAD_COLUMNS), dtype=np.float64)
        with kernel_threads(TILE_CHUNK):
            kernels.composite_backward(
                ctx.prepared, bins.gaussian_ids.numpy(), bins.tile_offsets.numpy(), bins.tiles_x,
                ctx.transmittance, ctx.n_stop, _numpy(grad_features.to(torch.float64)),
                _numpy(grad_alpha.squeeze(-1).to(torch.float64)), grad_isect,
            )  # fmt: skip
        per_gaussian = np.zeros((ctx.prepared.shape[0], kernels.GRAD_COLUMNS), dtype=np.float64)
        kernels.sum_per_gaussian(bins.gaussian_ids.numpy(), grad_isect, per_gaussian)
        grads = torch.from_numpy(per_gaussian).to(means2d.dtype)
        if ctx.absgrad:
            means2d.absgrad = grads[:, 10:12].clone()
        return (
            grads[:, 0:2].clone(),
            grads[:, 2:5].clone(),
            grads[:, 5].clone(),
            grads[:, 6:10].clone(),
            None, None, None, None, None,
        )  # fmt: skip
