"""Which way is up, and where the subject is: the scene frame of a capture.

Estimated once from the reconstruction (camera poses and sparse points) and used everywhere a
scene needs an orientation: the ``splat.ply`` header, ``transforms.json``, the preview orbit and
stills, the viewer's first view.

Up axis, first rule that applies wins (:data:`UpRule`):

1. ``plane``: the dominant plane of the sparse points (RANSAC) when it holds at least
   ``min_plane_share`` of them and its normal agrees with the cameras' up side (a table, a floor).
2. ``vertical``: hand-held cameras keep their right axis near-horizontal however they are
   pitched, so up is the direction most orthogonal to every right axis (the smallest singular
   vector of the stacked right axes; nerfstudio's ``vertical`` orientation method). It needs
   right axes that point in different directions.
3. ``fallback``: the mean image-up of the cameras with its part along their common right axis
   removed (few views, all from one direction, or identical orientations).

The sign always comes from the cameras: up points to their image-up and away from where they
look (``mean(image_up) − mean(forward)``), so cameras looking straight down still get it right.

Centre: the least-squares convergence point of the optical axes when it is well defined and in
front of the cameras, else the median of the points the most views see, else a point ahead of
the cameras. The observed region is a cylinder about the up axis through the centre: radius
and half height from the points the most views see (robust percentiles), no larger than what
the cameras see around the centre when they all look at it (so the walls behind an object do
not widen it), or that view alone when there are no points.

Limits: cameras that all share one heading say nothing about their pitch. The plane rule then
only takes a plane they see from above (normal within 80° of their image-up), and otherwise
the fallback assumes they are level; so a one-heading scan straight down at a table, which
looks exactly like a level scan of a wall, comes out 90° off. A few
views (5) of a level capture leave the ``vertical`` rule with the hand-held roll barely
averaged out (several degrees; the sparse points' plane decides in real jobs).

All vectors are in the world frame of the poses given (COLMAP's in a job); lengths in its units.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.colmap import ColmapCamera, ColmapModel

__all__ = [
    "FrameConfig",
    "SceneFrame",
    "UpRule",
    "estimate_scene_frame",
    "frame_from_model",
]

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]
UpRule = Literal["plane", "vertical", "fallback"]
_RULES: tuple[UpRule, ...] = ("plane", "vertical", "fallback")
_PLANE: UpRule = "plane"


@dataclass(frozen=True)
class SceneFrame:
    """The up axis and the observed region of a scene.

    Attributes:
        up: ``[3]`` unit up vector, world frame.
        center: ``[3]`` centre of the observed region, world frame.
        radius: radius of the observed region (a cylinder about ``up`` through ``center``),
            world units.
        half_height: half its height along ``up``, world units.
        rule: the rule that decided ``up`` (see :data:`UpRule`).
    """

    up: F64
    center: F64
    radius: float
    half_height: float
    rule: UpRule

    def __post_init__(self) -> None:
        up = np.asarray(self.up, dtype=np.float64).reshape(-1)
        center = np.asarray(self.center, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(up)) if up.shape == (3,) else 0.0
        if not (np.isfinite(norm) and norm > 0):
            raise ValueError(f"up must be a finite, non-zero 3-vector, got {self.up!r}")
        if center.shape != (3,) or not np.isfinite(center).all():
            raise ValueError(f"center must be a finite 3-vector, got {self.center!r}")
        for name in ("radius", "half_height"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and positive, got {value}")
        if self.rule not in _RULES:
            raise ValueError(f"rule must be one of {_RULES}, got {self.rule!r}")
        object.__setattr__(self, "up", up / norm)
        object.__setattr__(self, "center", center)

    def rotated(self, rotation: ArrayLike) -> SceneFrame:
        """The same frame after the world is turned by ``rotation`` ``[3, 3]`` (``p ↦ R p``)."""
        R = np.asarray(rotation, dtype=np.float64)
        return replace(self, up=R @ self.up, center=R @ self.center)

    def header_comments(self) -> list[str]:
        """PLY header comments (``Up Vector`` is written by the PLY writer itself)."""
        return [
            "Scene Center: " + " ".join(f"{c:.9g}" for c in self.center),
            f"Radius: {self.radius:.9g}",
            f"Half Height: {self.half_height:.9g}",
            f"Up Rule: {self.rule}",
        ]

    @classmethod
    def from_header_comments(cls, comments: Sequence[str]) -> SceneFrame | None:
        """The frame recorded by :meth:`header_comments` plus ``Up Vector``; ``None`` when any
        field is missing or malformed (other trainers' files)."""
        fields = {}
        for comment in comments:
            if m := re.fullmatch(r"\s*([A-Za-z ]+?):\s*(.*?)\s*", comment):
                fields[m.group(1)] = m.group(2)
        try:
            return cls(
                up=_floats(fields["Up Vector"], 3),
                center=_floats(fields["Scene Center"], 3),
                radius=float(_floats(fields["Radius"], 1)[0]),
                half_height=float(_floats(fields["Half Height"], 1)[0]),
                rule=fields["Up Rule"],  # type: ignore[arg-type]  # checked in __post_init__
            )
        except (KeyError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        """JSON form (``transforms.json``'s ``scene_frame``)."""
        return {
            "up": [float(c) for c in self.up],
            "center": [float(c) for c in self.center],
            "radius": float(self.radius),
            "half_height": float(self.half_height),
            "up_rule": self.rule,
        }


def _floats(text: str, count: int) -> F64:
    values = np.array([float(v) for v in text.split()])
    if values.shape != (count,) or not np.isfinite(values).all():
        raise ValueError(f"expected {count} finite numbers, got {text!r}")
    return values


@dataclass(frozen=True)
class FrameConfig:
    """Thresholds of :func:`estimate_scene_frame`.

    Attributes:
        min_plane_share: smallest share of the points a plane must hold to decide up.
        plane_tolerance_deg: largest angle between a plane's normal and the cameras' up
            (``vertical`` rule) for the plane to count as a floor or table.
        plane_threshold: inlier distance of the plane fit, as a share of the points' robust
            spread (median distance to their median).
        ransac_iterations: plane hypotheses tried.
        max_ransac_points: points the plane search looks at (a seeded random subset).
        min_right_spread: the ``vertical`` rule needs right axes this far apart (RMS sine of
            their angles to the dominant right axis; nerfstudio's 0.17 ≈ 10°).
        max_right_tilt: and right axes this close to one plane (RMS sine of their tilt out of
            it; 0.34 ≈ 20°). Above it the cameras are rolled too much for the rule.
        min_axes_spread: the optical axes' convergence point is used when the axes spread at
            least this much (smallest eigenvalue of ``mean(I − f fᵀ)``, ≈ sin² of their spread).
        region_percentile: percentile of the observed points' distances that bounds the region.
        seed: seeds the plane search (results are deterministic).
    """

    min_plane_share: float = 0.15
    plane_tolerance_deg: float = 30.0
    plane_threshold: float = 0.01
    ransac_iterations: int = 256
    max_ransac_points: int = 20_000
    min_right_spread: float = 0.17
    max_right_tilt: float = 0.34
    min_axes_spread: float = 0.005
    region_percentile: float = 85.0
    seed: int = 0


@dataclass(frozen=True)
class _Cameras:
    """Camera axes and centres in world coordinates, each ``[N, 3]``."""

    right: F64
    down: F64
    forward: F64
    centers: F64

    @classmethod
    def from_poses(cls, world_to_cameras: ArrayLike) -> _Cameras:
        poses = np.asarray(world_to_cameras, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)) or len(poses) == 0:
            raise ValueError(f"world_to_cameras must be [N, 4, 4] or [N, 3, 4], got {poses.shape}")
        rotations, translations = poses[:, :3, :3], poses[:, :3, 3]
        centers = -np.einsum("nji,nj->ni", rotations, translations)
        return cls(rotations[:, 0], rotations[:, 1], rotations[:, 2], centers)

    @property
    def count(self) -> int:
        return len(self.centers)

    def up_side(self) -> F64:
        """``[3]`` unit vector towards the cameras' up side: image-up and away from the view."""
        side = -self.down.mean(axis=0) - self.forward.mean(axis=0)
        if np.linalg.norm(side) < 1e-9:
            side = -self.down.mean(axis=0)
        return _unit_or(side, np.array([0.0, -1.0, 0.0]))


def estimate_scene_frame(
    world_to_cameras: ArrayLike,
    points: ArrayLike | None = None,
    track_lengths: ArrayLike | None = None,
    half_fov: ArrayLike | None = None,
    config: FrameConfig | None = None,
) -> SceneFrame:
    """The scene frame of a capture.

    Args:
        world_to_cameras: ``[N, 4, 4]`` (or ``[N, 3, 4]``) world → camera, OpenCV axes.
        points: ``[P, 3]`` sparse points, world frame; ``None`` or empty for cameras only.
        track_lengths: ``[P]`` number of views that see each point (all 1 when ``None``).
        half_fov: ``[N]`` half of each camera's narrower field of view, radians (30° when
            ``None``); sizes the region when there are no points.
        config: thresholds; defaults as :class:`FrameConfig`.
    """
    cfg = config or FrameConfig()
    cameras = _Cameras.from_poses(world_to_cameras)
    xyz, weights = _clean_points(points, track_lengths)
    cam_up, cam_rule = _camera_up(cameras, cfg)
    plane_up = _plane_up(xyz, cameras, cam_up, cam_rule, cfg)
    up, rule = (cam_up, cam_rule) if plane_up is None else (plane_up, _PLANE)
    center, converged = _center(cameras, xyz, weights, cfg)
    view = _view_radius(cameras, center, half_fov)
    reach = view if converged or len(xyz) == 0 else math.inf
    frame = _region(up, center, xyz, weights, reach, rule, cfg)
    log.info(
        "scene up %s decided by the %s rule (%d views, %d points); centre %s, radius %.3g",
        np.round(frame.up, 4).tolist(), rule, cameras.count, len(xyz),
        np.round(frame.center, 3).tolist(), frame.radius,
    )  # fmt: skip
    return frame


def frame_from_model(model: ColmapModel, config: FrameConfig | None = None) -> SceneFrame:
    """:func:`estimate_scene_frame` of a COLMAP model (poses, points, track lengths, fields of
    view).

    Raises:
        ValueError: the model has no registered images.
    """
    images = list(model.images.values())
    if not images:
        raise ValueError("the model has no registered images")
    poses = np.stack([image.world_to_camera() for image in images])
    half_fov = np.array([_half_fov(model.cameras[image.camera_id]) for image in images])
    points = model.points3d
    return estimate_scene_frame(poses, points.xyz, points.track_lengths(), half_fov, config)


def _half_fov(camera: ColmapCamera) -> float:
    """Half the narrower field of view of a COLMAP camera, radians."""
    half_w = math.atan(camera.width / (2.0 * camera.param("fx")))
    half_h = math.atan(camera.height / (2.0 * camera.param("fy")))
    return min(half_w, half_h)


def _clean_points(points: ArrayLike | None, track_lengths: ArrayLike | None) -> tuple[F64, F64]:
    """``([P, 3], [P])`` finite points and their weights (views that see them, at least 1)."""
    if points is None:
        return np.zeros((0, 3)), np.zeros(0)
    xyz = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if track_lengths is None:
        weights = np.ones(len(xyz))
    else:
        weights = np.asarray(track_lengths, dtype=np.float64).reshape(-1)
        if weights.shape != (len(xyz),):
            raise ValueError(f"track_lengths must be [{len(xyz)}], got {weights.shape}")
    keep = np.isfinite(xyz).all(axis=1) & np.isfinite(weights)
    return xyz[keep], np.maximum(weights[keep], 1.0)


# --- up: the cameras ---------------------------------------------------------------------


def _camera_up(cameras: _Cameras, cfg: FrameConfig) -> tuple[F64, UpRule]:
    """Up from the cameras alone: the ``vertical`` rule when its axes are decisive, else the
    ``fallback``."""
    side = cameras.up_side()
    _, singular, vh = np.linalg.svd(cameras.right, full_matrices=True)
    rms = np.zeros(3)
    rms[: len(singular)] = singular / math.sqrt(cameras.count)
    if rms[1] >= cfg.min_right_spread and rms[2] <= cfg.max_right_tilt:
        return _signed(vh[2], side), "vertical"
    return _fallback_up(cameras, vh[0], side), "fallback"


def _fallback_up(cameras: _Cameras, main_right: F64, side: F64) -> F64:
    """Mean image-up with its part along the cameras' common right axis removed."""
    image_up = -cameras.down.mean(axis=0)
    flattened = image_up - (image_up @ main_right) * main_right
    return _signed(_unit_or(flattened, side), side)


# --- up: the dominant plane ----------------------------------------------------------------


def _plane_up(
    xyz: F64, cameras: _Cameras, cam_up: F64, cam_rule: UpRule, cfg: FrameConfig
) -> F64 | None:
    """The normal of the dominant supporting plane, or ``None`` when there is none."""
    if len(xyz) < 10:
        return None
    sample = _subsample(xyz, cfg.max_ransac_points, cfg.seed)
    threshold = cfg.plane_threshold * _spread(sample)
    accept = _PlaneCheck(cameras, cam_up, cam_rule == "vertical", cfg)
    fit = _ransac_plane(sample, threshold, accept, cfg)
    if fit is None:
        return None
    normal, share = fit
    if share < cfg.min_plane_share:
        log.info("largest upright plane holds %.0f%% of the points: not decisive", 100 * share)
        return None
    return normal


@dataclass(frozen=True)
class _PlaneCheck:
    """Does a plane (normal, point on it) look like a floor or table under these cameras?

    With a decisive ``vertical`` rule the normal must be within ``plane_tolerance_deg`` of its
    up. Otherwise (cameras all from one side) the normal must be nearly orthogonal to their
    common right axis and lean towards their image-up (they see it from above), which rules out
    walls and the ceiling. Either way the cameras must be on the normal's side of the plane.
    """

    cameras: _Cameras
    cam_up: F64
    decisive: bool
    cfg: FrameConfig

    def oriented(self, normal: F64, origin: F64) -> F64 | None:
        """``normal`` signed towards the cameras' up, or ``None`` if the plane is rejected."""
        n = _signed(normal, self.cam_up)
        heights = (self.cameras.centers - origin) @ n
        if np.median(heights) <= 0:
            return None
        if self.decisive:
            limit = math.cos(math.radians(self.cfg.plane_tolerance_deg))
            return n if n @ self.cam_up >= limit else None
        image_up = _unit_or(-self.cameras.down.mean(axis=0), self.cam_up)
        right_tilt = float(np.sqrt(np.mean((self.cameras.right @ n) ** 2)))
        seen_from_above = n @ image_up >= math.sin(math.radians(10.0))
        return n if seen_from_above and right_tilt <= self.cfg.max_right_tilt else None


def _ransac_plane(
    xyz: F64, threshold: float, check: _PlaneCheck, cfg: FrameConfig
) -> tuple[F64, float] | None:
    """``(normal, share of points within threshold)`` of the best accepted plane."""
    rng = np.random.default_rng(cfg.seed)
    best: tuple[F64, F64, int] | None = None
    for _ in range(cfg.ransac_iterations):
        a, b, c = xyz[rng.choice(len(xyz), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        if np.linalg.norm(normal) < 1e-12:
            continue
        n = check.oriented(normal / np.linalg.norm(normal), a)
        if n is None:
            continue
        count = int(np.count_nonzero(np.abs((xyz - a) @ n) <= threshold))
        if best is None or count > best[2]:
            best = (n, a, count)
    if best is None:
        return None
    normal, inliers = _refine_plane(xyz, best[0], best[1], threshold)
    n = check.oriented(normal, xyz[inliers].mean(axis=0))
    return None if n is None else (n, float(inliers.mean()))


def _refine_plane(
    xyz: F64, normal: F64, origin: F64, threshold: float
) -> tuple[F64, NDArray[np.bool_]]:
    """Least-squares plane through the inliers, twice; returns ``(normal, inlier mask)``."""
    for _ in range(2):
        inliers = np.abs((xyz - origin) @ normal) <= threshold
        if inliers.sum() < 3:
            break
        origin = xyz[inliers].mean(axis=0)
        _, _, vh = np.linalg.svd(xyz[inliers] - origin, full_matrices=False)
        normal = _signed(vh[2], normal)
    return normal, np.abs((xyz - origin) @ normal) <= threshold


# --- centre and region ---------------------------------------------------------------------


def _center(cameras: _Cameras, xyz: F64, weights: F64, cfg: FrameConfig) -> tuple[F64, bool]:
    """``(centre, converged)``: where the optical axes converge (``True``), else the points
    most views see, else a point ahead of the cameras."""
    converged = _axes_convergence(cameras, cfg)
    if converged is not None:
        return converged, True
    if len(xyz):
        return np.median(_most_seen(xyz, weights), axis=0), False
    reach = max(_spread(cameras.centers), 1.0)
    ahead = _unit_or(cameras.forward.mean(axis=0), cameras.forward[0])
    return np.asarray(cameras.centers.mean(axis=0) + reach * ahead), False


def _axes_convergence(cameras: _Cameras, cfg: FrameConfig) -> F64 | None:
    """Least-squares point nearest every optical axis, if well defined and within 30° of the
    view axis of at least half of the cameras (they look at it, not past it)."""
    f = cameras.forward
    projectors = np.eye(3)[None] - f[:, :, None] * f[:, None, :]  # [N, 3, 3]
    A = projectors.sum(axis=0)
    b = np.einsum("nij,nj->i", projectors, cameras.centers)
    if np.linalg.eigvalsh(A / cameras.count)[0] < cfg.min_axes_spread:
        return None
    point = np.linalg.solve(A, b)
    rays = point - cameras.centers
    lengths = np.linalg.norm(rays, axis=1)
    cosines = np.einsum("ni,ni->n", rays, f) / np.where(lengths > 0, lengths, 1.0)
    in_view = cosines >= math.cos(math.radians(30.0))
    return point if in_view.mean() >= 0.5 else None


def _most_seen(xyz: F64, weights: F64) -> F64:
    """The points seen by at least as many views as the median point (at least one point)."""
    keep = weights >= np.median(weights)
    return xyz[keep] if keep.any() else xyz


def _region(
    up: F64,
    center: F64,
    xyz: F64,
    weights: F64,
    reach: float,
    rule: UpRule,
    cfg: FrameConfig,
) -> SceneFrame:
    """The observed region as a cylinder about ``up``: from the most-seen points (centre moved
    along ``up`` to the middle of their height range), no wider or higher than ``reach`` (what
    the cameras see at the centre when they all look at it; ``inf`` otherwise), or ``reach``
    itself when there are no points."""
    if len(xyz) == 0:
        return SceneFrame(up, center, reach, reach, rule)
    seen = _most_seen(xyz, weights)
    offsets = seen - center
    heights = offsets @ up
    horizontal = np.linalg.norm(offsets - heights[:, None] * up, axis=1)
    tail = (100.0 - cfg.region_percentile) / 2.0
    low, high = np.clip(np.percentile(heights, [tail, 100.0 - tail]), -reach, reach)
    floor = 1e-3 * max(_spread(xyz), 1e-6)
    radius = min(float(np.percentile(horizontal, cfg.region_percentile)), reach)
    half_height = max(float(high - low) / 2.0, floor)
    return SceneFrame(up, center + up * (low + high) / 2.0, max(radius, floor), half_height, rule)


def _view_radius(cameras: _Cameras, center: F64, half_fov: ArrayLike | None) -> float:
    """What a median camera sees around the centre at the centre's distance (the radius of its
    narrower field of view there)."""
    angles = np.full(cameras.count, math.radians(30.0)) if half_fov is None else half_fov
    distances = np.linalg.norm(cameras.centers - center, axis=1)
    spans = distances * np.tan(np.asarray(angles, dtype=np.float64))
    radius = float(np.median(spans))
    return radius if radius > 0 else 1.0


# --- helpers -------------------------------------------------------------------------------


def _signed(v: F64, reference: F64) -> F64:
    """``v`` or ``−v``, whichever points along ``reference``."""
    return np.asarray(-v if v @ reference < 0 else v)


def _unit_or(v: F64, default: F64) -> F64:
    norm = float(np.linalg.norm(v))
    return np.asarray(v / norm) if norm > 1e-9 else np.asarray(default / np.linalg.norm(default))


def _spread(xyz: F64) -> float:
    """Median distance of the points to their median (0 for fewer than two)."""
    if len(xyz) < 2:
        return 0.0
    return float(np.median(np.linalg.norm(xyz - np.median(xyz, axis=0), axis=1)))


def _subsample(xyz: F64, limit: int, seed: int) -> F64:
    if len(xyz) <= limit:
        return xyz
    return xyz[np.random.default_rng(seed).choice(len(xyz), limit, replace=False)]
