"""Where the subject is: the region the preview orbits.

Two sources. A job knows the region its cameras observed (the scene frame,
:class:`~pipeline.scene_frame.SceneFrame`, recorded in our PLY headers): a cylinder about the
up axis. Any other splat gets a robust, up-aligned bounding box of its centres. The reference
took the raw min/max of all centres, so one far floater inflated the box and shrank the
subject to a dot in the preview. Here each side of the box is an opacity-weighted percentile of
the centres (faint floaters weigh little, and a few strong ones fall outside the percentiles),
measured along the scene's own axes: two horizontal ones and the up vector. The preview frames
either as a :class:`SubjectCylinder` (a box by its circumscribed cylinder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.scene_frame import SceneFrame

__all__ = ["BoundsConfig", "SceneBounds", "SubjectCylinder", "robust_bounds", "scene_axes"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class BoundsConfig:
    """How :func:`robust_bounds` measures the subject.

    Attributes:
        low_percentile: lower edge of the box along each axis, percent of total weight.
        high_percentile: upper edge, percent of total weight.
        opacity_weighted: weight each centre by its opacity (else all weigh the same).
        min_size: smallest side of the box, world units (a single Gaussian or a flat scene
            still gets a box with volume).
    """

    low_percentile: float = 2.0
    high_percentile: float = 98.0
    opacity_weighted: bool = True
    min_size: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError(
                "percentiles must satisfy 0 <= low < high <= 100, got "
                f"{self.low_percentile} and {self.high_percentile}"
            )
        if not self.min_size > 0:
            raise ValueError(f"min_size must be positive, got {self.min_size}")


@dataclass(frozen=True)
class SceneBounds:
    """An oriented box around the subject.

    Attributes:
        center: ``[3]`` box centre, world frame.
        axes: ``[3, 3]`` rows = box axes in world coordinates: horizontal ``e1``, horizontal
            ``e2``, ``up`` (orthonormal, right-handed: ``e1 × e2 = up``).
        half_extents: ``[3]`` half side lengths along ``axes``, world units.
    """

    center: F64
    axes: F64
    half_extents: F64

    @property
    def up(self) -> F64:
        """``[3]`` the scene's up vector."""
        return np.asarray(self.axes[2], dtype=np.float64)

    @property
    def size(self) -> float:
        """Longest side of the box, world units."""
        return float(2.0 * self.half_extents.max())

    @property
    def radius(self) -> float:
        """Radius of the sphere through the box's corners, world units."""
        return float(np.linalg.norm(self.half_extents))

    def corners(self) -> F64:
        """``[8, 3]`` box corners, world frame."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return self.center + (signs * self.half_extents) @ self.axes

    def cylinder(self) -> SubjectCylinder:
        """The smallest cylinder about ``up`` through the centre that holds the box."""
        radius = float(np.hypot(self.half_extents[0], self.half_extents[1]))
        return SubjectCylinder(self.center, self.axes, radius, float(self.half_extents[2]))


@dataclass(frozen=True)
class SubjectCylinder:
    """The region the preview frames: a cylinder standing on the scene's up axis.

    Attributes:
        center: ``[3]`` centre, world frame.
        axes: ``[3, 3]`` rows ``(e1, e2, up)`` as :func:`scene_axes` makes them.
        radius: radius about ``up``, world units.
        half_height: half its height along ``up``, world units.
    """

    center: F64
    axes: F64
    radius: float
    half_height: float

    @classmethod
    def from_frame(cls, frame: SceneFrame) -> SubjectCylinder:
        """The observed region of a scene frame."""
        return cls(frame.center, scene_axes(frame.up), frame.radius, frame.half_height)

    @property
    def up(self) -> F64:
        """``[3]`` the scene's up vector."""
        return np.asarray(self.axes[2], dtype=np.float64)

    def rim_points(self, count: int = 64) -> F64:
        """``[2 · count, 3]`` corners of two regular ``count``-gons (top and bottom) whose
        prism holds the cylinder, world frame (for framing: a view that holds them holds it)."""
        angles = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
        reach = float(self.radius / np.cos(np.pi / count))
        e1, e2, up = self.axes
        ring: F64 = reach * (np.outer(np.cos(angles), e1) + np.outer(np.sin(angles), e2))
        lift: F64 = self.half_height * up
        rims: F64 = np.concatenate([ring + lift, ring - lift])
        return rims + self.center


def scene_axes(up: ArrayLike) -> F64:
    """``[3, 3]`` rows ``(e1, e2, up)``: a right-handed frame whose third axis is ``up``.

    ``e1`` is world +x made horizontal (world +y if ``up`` is nearly along x), so for
    ``up = +z`` the frame is the world's own ``(x, y, z)``.
    """
    u = np.asarray(up, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(u)) if u.shape == (3,) else 0.0
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"up must be a finite, non-zero 3-vector, got {up!r}")
    u = u / norm
    seed = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = seed - (seed @ u) * u
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(u, e1), u])


def robust_bounds(
    means: ArrayLike,
    opacities: ArrayLike,
    up: ArrayLike,
    config: BoundsConfig | None = None,
) -> SceneBounds:
    """Opacity-weighted percentile box of Gaussian centres, aligned with ``up``.

    Args:
        means: ``[N, 3]`` centres, world frame. Non-finite rows are ignored.
        opacities: ``[N]`` opacities in [0, 1] (activated); the weights.
        up: ``[3]`` up vector, world frame.
        config: percentiles and minimum size; defaults as :class:`BoundsConfig`.

    Raises:
        ValueError: no Gaussian with a finite centre.
    """
    cfg = config or BoundsConfig()
    points = np.asarray(means, dtype=np.float64).reshape(-1, 3)
    weights = np.asarray(opacities, dtype=np.float64).reshape(-1)
    usable = np.isfinite(points).all(axis=1)
    points, weights = points[usable], weights[usable]
    if len(points) == 0:
        raise ValueError("no Gaussian has a finite position")
    weights = _clean_weights(weights) if cfg.opacity_weighted else np.ones(len(points))
    axes = scene_axes(up)
    local = points @ axes.T  # coordinates along (e1, e2, up)
    low = np.array(
        [_weighted_percentile(local[:, k], weights, cfg.low_percentile) for k in range(3)]
    )
    high = np.array(
        [_weighted_percentile(local[:, k], weights, cfg.high_percentile) for k in range(3)]
    )
    half = np.maximum((high - low) / 2.0, cfg.min_size / 2.0)
    return SceneBounds(center=((low + high) / 2.0) @ axes, axes=axes, half_extents=half)


def _clean_weights(weights: F64) -> F64:
    """Non-finite or negative weights count as 0; all-zero weights fall back to uniform."""
    w = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    return w if w.sum() > 0 else np.ones_like(w)


def _weighted_percentile(values: F64, weights: F64, percent: float) -> float:
    """Smallest value whose cumulative weight (values ascending) reaches ``percent`` %."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, percent / 100.0 * cumulative[-1], side="left"))
    return float(values[order][min(index, len(values) - 1)])
