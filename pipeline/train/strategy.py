"""Densification: clone, split, prune and opacity resets (gsplat ``DefaultStrategy`` semantics).

After each optimisation step the strategy

1. accumulates, for every Gaussian visible in the view, the norm of the screen-space gradient
   of its projected centre, normalised to device units (``x · W/2``, ``y · H/2``), and its
   largest screen radius as a fraction of the longer image side;
2. every ``refine_every`` steps in ``(refine_start_iter, refine_stop_iter)``, outside the pause
   after an opacity reset: clones small Gaussians with a high mean gradient, splits large ones
   (two samples drawn from the Gaussian, scales divided by 1.6), splits Gaussians that look too
   big on screen (until ``refine_scale2d_stop_iter``), then prunes transparent ones and — after
   the first reset — too big ones; the statistics restart from zero;
3. every ``reset_every`` steps (before ``refine_stop_iter``) clamps opacities to
   ``2 · prune_opa`` and forgets their Adam moments.

New rows start with zero Adam moments and a copy of their source's statistics. The gradient is
``means2d.absgrad`` when the backend provides it and ``absgrad`` is on, else ``means2d.grad``
with the plain threshold. Opacity resets follow gsplat 1.4.0, which splatfacto pins, except
that step 0 is skipped (1.4.0 "resets" there too, which only clears Adam's fresh moments);
gsplat 1.5.3 never resets (its ``step % reset_every == 0 & step > 0`` is always false).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from pipeline.render.projection import quat_to_rotmat
from pipeline.render.types import RenderOutput
from pipeline.train.config import DensifyConfig
from pipeline.train.optim import Optimizers, replace_rows, zero_moments
from pipeline.train.params import PARAM_NAMES, ParamName, Params, num_gaussians

__all__ = ["DensifyState", "DensifyStrategy", "GradientSource", "RefineReport"]

GradientSource = Literal["absgrad", "grad"]

# Split children are this much smaller than their parent along every axis (3DGS's 0.8 · 2).
SPLIT_SCALE_DIVISOR = 1.6


@dataclass
class DensifyState:
    """Running statistics since the last refinement, one entry per Gaussian.

    Attributes:
        grad2d: ``[N]`` sum of normalised screen-gradient norms.
        count: ``[N]`` number of views the Gaussian was visible in.
        radii: ``[N]`` largest screen radius seen, fraction of the longer image side.
        gradient_source: which gradient was accumulated (``None`` before the first step).
    """

    grad2d: Tensor
    count: Tensor
    radii: Tensor
    gradient_source: GradientSource | None = None

    @classmethod
    def zeros(cls, n: int, device: torch.device | str = "cpu") -> DensifyState:
        """Empty statistics for ``n`` Gaussians."""
        grad2d, count, radii = torch.zeros(3, n, device=device)
        return cls(grad2d.clone(), count.clone(), radii.clone())

    def clear(self) -> None:
        """Restart the accumulation (after a refinement)."""
        for t in (self.grad2d, self.count, self.radii):
            t.zero_()

    def reindex(self, keep: Tensor, sources: Tensor) -> None:
        """Rows ``keep`` followed by copies of rows ``sources`` (int64 index tensors)."""
        self.grad2d, self.count, self.radii = (
            torch.cat([t[keep], t[sources]]) for t in (self.grad2d, self.count, self.radii)
        )

    def to_dict(self) -> dict[str, Any]:
        """Checkpoint form (CPU tensors)."""
        return {
            "grad2d": self.grad2d.cpu(),
            "count": self.count.cpu(),
            "radii": self.radii.cpu(),
            "gradient_source": self.gradient_source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device | str) -> DensifyState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            grad2d=data["grad2d"].to(device),
            count=data["count"].to(device),
            radii=data["radii"].to(device),
            gradient_source=data["gradient_source"],
        )


@dataclass
class RefineReport:
    """What one call to :meth:`DensifyStrategy.step` changed."""

    duplicated: int = 0
    split: int = 0
    pruned: int = 0
    opacity_reset: bool = False


class DensifyStrategy:
    """Applies :class:`DensifyConfig` to a parameter set after each optimisation step.

    Args:
        config: thresholds and schedule.
        num_train_views: sets the default pause after an opacity reset.
    """

    def __init__(self, config: DensifyConfig, num_train_views: int) -> None:
        self.config = config
        self.pause = config.pause_after_reset(num_train_views)

    def observe(self, state: DensifyState, output: RenderOutput) -> None:
        """Accumulate one rendered view's gradients (call after ``backward``)."""
        height, width = output.rgb.shape[:2]
        grads, state.gradient_source = self._screen_gradients(output)
        grads = grads.detach().to(state.grad2d.device, torch.float32).clone()
        grads[:, 0] *= width / 2.0
        grads[:, 1] *= height / 2.0
        ids = torch.nonzero(output.visible.to(state.grad2d.device)).squeeze(-1)
        state.grad2d.index_add_(0, ids, grads[ids].norm(dim=-1))
        state.count.index_add_(0, ids, torch.ones_like(ids, dtype=state.count.dtype))
        radii = output.radii.to(state.radii.device).amax(dim=-1).float() / max(width, height)
        state.radii[ids] = torch.maximum(state.radii[ids], radii[ids])

    def _screen_gradients(self, output: RenderOutput) -> tuple[Tensor, GradientSource]:
        absgrad = getattr(output.means2d, "absgrad", None)
        if self.config.absgrad and isinstance(absgrad, Tensor):
            return absgrad, "absgrad"
        grad = output.means2d.grad
        return (torch.zeros_like(output.means2d) if grad is None else grad), "grad"

    def step(
        self,
        params: Params,
        optimizers: Optimizers,
        state: DensifyState,
        step: int,
        output: RenderOutput,
        generator: torch.Generator,
    ) -> RefineReport:
        """Post-step hook at 0-based ``step``; mutates ``params``, ``optimizers`` and ``state``.

        ``generator`` (CPU) draws the split samples.
        """
        c = self.config
        report = RefineReport()
        if step >= c.refine_stop_iter:
            return report
        self.observe(state, output)
        if self.refines_at(step):
            report.duplicated, report.split = self._grow(params, optimizers, state, step, generator)
            report.pruned = self._prune(params, optimizers, state, step)
            state.clear()
        if step > 0 and step % c.reset_every == 0:
            self._reset_opacities(params, optimizers)
            report.opacity_reset = True
        return report

    def refines_at(self, step: int) -> bool:
        """Whether growing and pruning happen at ``step``."""
        c = self.config
        return (
            c.refine_start_iter < step < c.refine_stop_iter
            and step % c.refine_every == 0
            and step % c.reset_every >= self.pause
        )

    @torch.no_grad()
    def _grow(
        self,
        params: Params,
        optimizers: Optimizers,
        state: DensifyState,
        step: int,
        generator: torch.Generator,
    ) -> tuple[int, int]:
        c = self.config
        mean_grads = state.grad2d / state.count.clamp_min(1)
        plain = state.gradient_source != "absgrad"
        high = mean_grads > (c.grow_grad2d_plain if plain else c.grow_grad2d)
        small = _max_scale(params) <= c.grow_scale3d * c.scene_scale
        clone = high & small
        split = high & ~small
        if step < c.refine_scale2d_stop_iter:
            split |= state.radii > c.grow_scale2d
        clone, split = self._within_cap(clone, split, mean_grads)
        _clone(params, optimizers, state, clone)
        n_clones = int(clone.sum())
        # Clones are appended at the end and are never split in the same refinement.
        split = torch.cat([split, split.new_zeros(n_clones)])
        _split(params, optimizers, state, split, generator)
        return n_clones, int(split.sum())

    def _within_cap(
        self, clone: Tensor, split: Tensor, mean_grads: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Drop the lowest-gradient candidates so the count stays within ``max_gaussians``."""
        cap = self.config.max_gaussians
        cost = clone.long() + split.long()  # rows each candidate adds
        if cap is None or int(cost.sum()) + cost.numel() <= cap:
            return clone, split
        candidates = torch.nonzero(cost > 0).squeeze(-1)
        order = torch.argsort(mean_grads[candidates], descending=True, stable=True)
        ranked = candidates[order]
        within = torch.cumsum(cost[ranked], dim=0) <= max(cap - cost.numel(), 0)
        allowed = torch.zeros_like(clone)
        allowed[ranked[within]] = True
        return clone & allowed, split & allowed

    @torch.no_grad()
    def _prune(self, params: Params, optimizers: Optimizers, state: DensifyState, step: int) -> int:
        c = self.config
        prune = torch.sigmoid(params["logit_opacities"]) < c.prune_opa
        if step > c.reset_every:
            too_big = _max_scale(params) > c.prune_scale3d * c.scene_scale
            if step < c.refine_scale2d_stop_iter:
                too_big |= state.radii > c.prune_scale2d
            prune |= too_big
        keep = torch.nonzero(~prune).squeeze(-1)
        if len(keep) < len(prune):
            empty = keep[:0]
            replace_rows(params, optimizers, keep, {n: params[n][empty] for n in PARAM_NAMES})
            state.reindex(keep, empty)
        return int(prune.sum())

    @torch.no_grad()
    def _reset_opacities(self, params: Params, optimizers: Optimizers) -> None:
        ceiling = math.log(2 * self.config.prune_opa / (1 - 2 * self.config.prune_opa))
        params["logit_opacities"].clamp_(max=ceiling)
        zero_moments(optimizers, "logit_opacities")


def _max_scale(params: Params) -> Tensor:
    """``[N]`` largest standard deviation of each Gaussian, world units."""
    return torch.exp(params["log_scales"]).amax(dim=-1)


def _clone(params: Params, optimizers: Optimizers, state: DensifyState, mask: Tensor) -> None:
    """Append an exact copy of every masked row."""
    if not bool(mask.any()):
        return
    sources = torch.nonzero(mask).squeeze(-1)
    keep = torch.arange(num_gaussians(params), device=mask.device)
    replace_rows(params, optimizers, keep, {n: params[n][sources] for n in PARAM_NAMES})
    state.reindex(keep, sources)


def _split(
    params: Params,
    optimizers: Optimizers,
    state: DensifyState,
    mask: Tensor,
    generator: torch.Generator,
) -> None:
    """Replace every masked row by two children sampled from it, each 1.6× smaller."""
    if not bool(mask.any()):
        return
    sources = torch.nonzero(mask).squeeze(-1)
    keep = torch.nonzero(~mask).squeeze(-1)
    scales = torch.exp(params["log_scales"][sources])
    rotations = quat_to_rotmat(params["quats"][sources])
    noise = torch.randn(2, len(sources), 3, generator=generator).to(scales.device)
    offsets = torch.einsum("nij,bnj->bni", rotations, scales * noise)  # [2, S, 3]
    children: dict[ParamName, Tensor] = {n: _repeat2(params[n][sources]) for n in PARAM_NAMES}
    children["means"] = (params["means"][sources] + offsets).reshape(-1, 3)
    children["log_scales"] = _repeat2(torch.log(scales / SPLIT_SCALE_DIVISOR))
    replace_rows(params, optimizers, keep, children)
    state.reindex(keep, sources.repeat(2))


def _repeat2(rows: Tensor) -> Tensor:
    """``[S, ...]`` → ``[2S, ...]``: all rows, then all rows again."""
    return rows.repeat(2, *([1] * (rows.dim() - 1)))
