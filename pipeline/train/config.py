"""Trainer configuration: the splatfacto recipe (nerfstudio 1.1.5) and a short CPU profile.

The defaults of :class:`TrainConfig` are the reference's 30,000-step recipe (pipeline-reference.md
§3.3/§3.4). Every schedule is written in steps of that recipe; :meth:`TrainConfig.scaled_to`
rescales all of them at once for a shorter run, and :meth:`TrainConfig.cpu` is the short profile
a CPU-only machine trains with so that a demo finishes in minutes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipeline.render.types import BackendName

__all__ = ["REFERENCE_STEPS", "DensifyConfig", "LearningRates", "TrainConfig"]

# Length of the reference run; the schedule defaults below are expressed against it.
REFERENCE_STEPS = 30_000
# A scaled refinement period never drops below this: the gradient statistics need a few views
# per refinement, and refining every step or two grows the count explosively.
MIN_SCALED_REFINE_EVERY = 10


@dataclass(frozen=True)
class LearningRates:
    """Adam learning rates per parameter group (splatfacto's, absolute: no scene scaling).

    Attributes:
        means: initial rate of the centres, world units; decays exponentially.
        means_final: rate of the centres at the last step (``means`` → this over the run).
        sh_dc: DC colour coefficients.
        sh_rest: higher-order SH coefficients (``sh_dc / 20``).
        opacities: opacity logits.
        scales: log standard deviations.
        quats: quaternion components.
        eps: Adam's epsilon for every group.
    """

    means: float = 1.6e-4
    means_final: float = 1.6e-6
    sh_dc: float = 2.5e-3
    sh_rest: float = 2.5e-3 / 20
    opacities: float = 0.05
    scales: float = 5e-3
    quats: float = 1e-3
    eps: float = 1e-15

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "eps" and not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"lr.{name} must be finite and ≥ 0, got {value}")
        if not (math.isfinite(self.eps) and self.eps > 0.0):
            raise ValueError(f"lr.eps must be finite and > 0, got {self.eps}")


@dataclass(frozen=True)
class DensifyConfig:
    """Growing and pruning, gsplat ``DefaultStrategy`` as splatfacto parameterises it.

    All ``*_iter``/``*_every`` values are steps. Screen-space quantities are fractions of the
    image: gradients of the projected centres in normalised device units (``[-1, 1]`` across the
    image), radii as a fraction of the longer image side.

    Attributes:
        prune_opa: prune Gaussians whose opacity is below this; opacity resets clamp to twice it.
        grow_grad2d: grow Gaussians whose mean screen-gradient norm exceeds this, when the
            backend provides absolute gradients (``means2d.absgrad``) and ``absgrad`` is on.
        grow_grad2d_plain: the same threshold for plain gradients (gsplat's default), used when
            ``absgrad`` is off or the backend does not provide ``absgrad``.
        grow_scale3d: Gaussians whose largest scale is at most this (× ``scene_scale``, world
            units) are cloned, larger ones split in two.
        grow_scale2d: before ``refine_scale2d_stop_iter``, Gaussians whose screen radius exceeds
            this fraction are split regardless of their gradient.
        prune_scale3d: after the first opacity reset, prune Gaussians larger than this
            (× ``scene_scale``, world units).
        prune_scale2d: before ``refine_scale2d_stop_iter`` (and after the first reset), prune
            Gaussians whose screen radius exceeds this fraction.
        refine_scale2d_stop_iter: the screen-size rules apply before this step.
        refine_start_iter: refinement happens only after this step.
        refine_stop_iter: no refinement, statistics or opacity reset from this step on.
        reset_every: clamp every opacity to ``2 · prune_opa`` each time this many steps pass.
        refine_every: refine each time this many steps pass.
        pause_refine_after_reset: no refinement during this many steps after each reset;
            ``None`` means the reference rule, number of training views + ``refine_every``.
        max_pause_fraction: the pause is clamped to this fraction of ``reset_every``. ``1.0``
            keeps the reference (which never refines when the pause covers the whole period,
            i.e. with ≥ 2,900 training views); short profiles use ``0.5``.
        absgrad: prefer absolute gradients (AbsGS), as splatfacto does.
        scene_scale: multiplies the 3D thresholds; splatfacto fixes it to 1 (world units).
        max_gaussians: upper bound on the count (``None``: none, as in the reference). When
            growth would pass it, the candidates with the largest gradients win.
    """

    prune_opa: float = 0.1
    grow_grad2d: float = 0.0008
    grow_grad2d_plain: float = 0.0002
    grow_scale3d: float = 0.01
    grow_scale2d: float = 0.05
    prune_scale3d: float = 0.5
    prune_scale2d: float = 0.15
    refine_scale2d_stop_iter: int = 4000
    refine_start_iter: int = 500
    refine_stop_iter: int = 15_000
    reset_every: int = 3000
    refine_every: int = 100
    pause_refine_after_reset: int | None = None
    max_pause_fraction: float = 1.0
    absgrad: bool = True
    scene_scale: float = 1.0
    max_gaussians: int | None = None

    def __post_init__(self) -> None:
        for name in ("refine_every", "reset_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"densify.{name} must be ≥ 1, got {getattr(self, name)}")
        if not 0.0 < self.prune_opa < 0.5:
            raise ValueError(f"densify.prune_opa must be in (0, 0.5), got {self.prune_opa}")
        if not 0.0 <= self.max_pause_fraction <= 1.0:
            raise ValueError(
                f"densify.max_pause_fraction must be in [0, 1], got {self.max_pause_fraction}"
            )
        if self.max_gaussians is not None and self.max_gaussians < 1:
            raise ValueError(f"densify.max_gaussians must be ≥ 1, got {self.max_gaussians}")

    def pause_after_reset(self, num_train_views: int) -> int:
        """Steps without refinement after each opacity reset, for a scene of that many views."""
        pause = self.pause_refine_after_reset
        if pause is None:
            pause = num_train_views + self.refine_every
        return min(pause, math.floor(self.max_pause_fraction * self.reset_every))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run (defaults: the reference 30,000-step recipe).

    Attributes:
        steps: optimisation steps, one training view each.
        seed: seeds initialisation, view order, backgrounds and splits (deterministic on CPU).
        downscale: integer factor the training and evaluation images are shrunk by (box
            filter); ``None`` picks the smallest power of two bringing the longer side to at
            most ``max_image_side`` pixels, as nerfstudio does.
        max_image_side: pixels, used when ``downscale`` is ``None``.
        sh_degree: highest SH degree trained (0..3).
        sh_degree_interval: the rendered SH degree grows by one every this many steps.
        num_downscales: the resolution schedule starts at ``1 / 2**num_downscales`` of the
            training resolution ...
        resolution_schedule: ... and doubles it every this many steps.
        ssim_lambda: loss = ``(1 - λ) · L1 + λ · (1 - SSIM)``.
        random_background: a uniform random background colour each step (splatfacto); else
            the evaluation background throughout.
        init_opacity: opacity of every initial Gaussian.
        max_init_points: keep at most this many SfM points (a seeded random subset); ``None``:
            all, as the reference.
        random_init_points: Gaussians placed at random when the scene has no SfM points.
        random_init_scale: those points lie in the training views' frusta up to this depth, in
            camera extents (the largest distance of a training camera from their mean); the
            CPU profile uses 3 (an orbit's subject and surroundings).
        fill_uncovered_points: with SfM points, the Gaussians added where no point projects
            into a training view (this many if every view were empty; in proportion to the
            share of the views' grid cells that are empty, in views with at least a quarter of
            them empty; see :mod:`pipeline.train.initialize`); 0 (the reference) adds none,
            the CPU profile up to 5,000.
        checkpoint_every: write a checkpoint every this many steps (and at the end); the
            profiles keep it at most a tenth of the run.
        checkpoint_every_s: ... and whenever this many seconds of training have passed since
            the last one, so a kill loses at most that much work.
        eval_every: also evaluate the held-out views every this many steps (``None``: only at
            the end).
        lr: learning rates.
        densify: growing and pruning.
    """

    steps: int = REFERENCE_STEPS
    seed: int = 0
    downscale: int | None = None
    max_image_side: int = 1600
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    num_downscales: int = 2
    resolution_schedule: int = 3000
    ssim_lambda: float = 0.2
    random_background: bool = True
    init_opacity: float = 0.1
    max_init_points: int | None = None
    random_init_points: int = 50_000
    random_init_scale: float = 10.0
    fill_uncovered_points: int = 0
    checkpoint_every: int = 2000
    checkpoint_every_s: float = 120.0
    eval_every: int | None = None
    lr: LearningRates = field(default_factory=LearningRates)
    densify: DensifyConfig = field(default_factory=DensifyConfig)

    def __post_init__(self) -> None:
        positive = ("steps", "max_image_side", "sh_degree_interval", "resolution_schedule")
        for name in (*positive, "checkpoint_every", "random_init_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not 0 <= self.sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0..3, got {self.sh_degree}")
        if self.downscale is not None and self.downscale < 1:
            raise ValueError(f"downscale must be ≥ 1 or None, got {self.downscale}")
        if not 0.0 <= self.ssim_lambda <= 1.0:
            raise ValueError(f"ssim_lambda must be in [0, 1], got {self.ssim_lambda}")
        if not 0.0 < self.init_opacity < 1.0:
            raise ValueError(f"init_opacity must be in (0, 1), got {self.init_opacity}")
        if self.num_downscales < 0:
            raise ValueError(f"num_downscales must be ≥ 0, got {self.num_downscales}")
        if not self.checkpoint_every_s > 0:
            raise ValueError(f"checkpoint_every_s must be > 0, got {self.checkpoint_every_s}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval_every must be ≥ 1 or None, got {self.eval_every}")
        if self.max_init_points is not None and self.max_init_points < 1:
            raise ValueError(f"max_init_points must be ≥ 1 or None, got {self.max_init_points}")

    @classmethod
    def reference(cls, **overrides: Any) -> TrainConfig:
        """The reference recipe: 30,000 steps at up to 1600 px, no caps (the GPU profile).

        ``overrides`` are taken as given; for another run length use :meth:`scaled_to`.
        """
        return cls(**overrides)

    @classmethod
    def cpu(cls, steps: int = 1000, **overrides: Any) -> TrainConfig:
        """The CPU profile: a short run on small images with capped Gaussian counts.

        ``steps`` (default 1,000) rescales every schedule (:meth:`scaled_to`); images are
        shrunk to at most 320 px on the longer side, the SfM seed to 10,000 points (5,000 for a
        random start, at most 3 camera extents deep; up to 5,000 more where the SfM points
        leave a quarter or more of a view empty) and growth stops at 20,000 Gaussians. A
        full step at 10,000 Gaussians and 320×180 costs about 0.17 s on two cores, so a run
        takes minutes (the 160×120 synthetic job: about two). ``overrides`` replace any
        top-level field afterwards.
        """
        base = cls().scaled_to(steps)
        profile = replace(
            base,
            max_image_side=320,
            max_init_points=10_000,
            random_init_points=5_000,
            random_init_scale=3.0,
            fill_uncovered_points=5_000,
            checkpoint_every=max(1, steps // 10),
            densify=replace(base.densify, max_gaussians=20_000),
        )
        return replace(profile, **overrides)

    @classmethod
    def for_backend(cls, backend: BackendName, steps: int | None = None) -> TrainConfig:
        """The profile that suits a backend: ``gsplat`` → reference, ``cpu`` → :meth:`cpu`."""
        if backend == "gsplat":
            return cls.reference() if steps is None else cls.reference().scaled_to(steps)
        return cls.cpu() if steps is None else cls.cpu(steps)

    def scaled_to(self, steps: int) -> TrainConfig:
        """This recipe squeezed (or stretched) into ``steps``.

        Every step-valued schedule — SH interval, resolution schedule, refine start/stop/every,
        opacity-reset interval, the end of the screen-size rules, the checkpoint cadence — is
        multiplied by ``steps / 30000`` and rounded (at least 1); the means learning rate always
        decays over the whole run. ``refine_every`` is not scaled below
        ``MIN_SCALED_REFINE_EVERY`` (10).
        The pause after a reset keeps the reference rule (training views + ``refine_every``)
        but is clamped to half a reset period so that short runs with many views still refine.
        ``scaled_to(30000)`` of the defaults is the reference itself.
        """
        if steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {steps}")
        if steps == REFERENCE_STEPS:
            return replace(self, steps=steps)
        factor = steps / REFERENCE_STEPS

        def scale(value: int) -> int:
            return max(1, round(value * factor))

        d = self.densify
        densify = replace(
            d,
            refine_scale2d_stop_iter=scale(d.refine_scale2d_stop_iter),
            refine_start_iter=scale(d.refine_start_iter),
            refine_stop_iter=scale(d.refine_stop_iter),
            reset_every=scale(d.reset_every),
            refine_every=max(scale(d.refine_every), min(d.refine_every, MIN_SCALED_REFINE_EVERY)),
            max_pause_fraction=min(d.max_pause_fraction, 0.5),
        )
        return replace(
            self,
            steps=steps,
            sh_degree_interval=scale(self.sh_degree_interval),
            resolution_schedule=scale(self.resolution_schedule),
            checkpoint_every=scale(self.checkpoint_every),
            densify=densify,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for checkpoints and logs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        fields = dict(data)
        fields["lr"] = LearningRates(**fields["lr"])
        fields["densify"] = DensifyConfig(**fields["densify"])
        return cls(**fields)
