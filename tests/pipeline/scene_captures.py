"""Generated captures with a known vertical: tabletop orbits, room walk-throughs, the issue's
book-on-a-desk scan, and degenerate camera sets.

Every capture is built in a z-up world and then turned by a random rotation and shifted, so
that no world axis gives the answer away. Cameras are OpenCV (x right, y down, z forward), aimed
at a target with a given pitch below the horizon, then rolled about their view axis (hand-held
roll). Sparse points carry the number of cameras whose view holds them (their track length);
points seen by fewer than two are dropped, as structure from motion would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Capture",
    "angle_deg",
    "book_on_desk",
    "generated_cases",
    "identical_orientations",
    "room",
    "straight_down",
    "tabletop",
    "two_views",
]

F64 = NDArray[np.float64]
Z = np.array([0.0, 0.0, 1.0])
HALF_FOV_X, HALF_FOV_Y = math.radians(35.0), math.radians(27.0)


@dataclass(frozen=True)
class Capture:
    """One generated capture.

    Attributes:
        name: what it is (kind, views, pitch range, with/without points).
        world_to_cameras: ``[N, 4, 4]`` OpenCV world → camera.
        points: ``[P, 3]`` sparse points (``[0, 3]`` for cameras only).
        track_lengths: ``[P]`` views that see each point.
        up: ``[3]`` the true vertical.
        plane_normal: ``[3]`` the supporting plane's upward normal (table or floor).
        center: ``[3]`` where the cameras aim (the subject).
    """

    name: str
    world_to_cameras: F64
    points: F64
    track_lengths: NDArray[np.int64]
    up: F64
    plane_normal: F64
    center: F64

    def without_points(self) -> Capture:
        empty = np.zeros((0, 3))
        return Capture(self.name.replace("points", "cams"), self.world_to_cameras, empty,
                       np.zeros(0, np.int64), self.up, self.plane_normal, self.center)  # fmt: skip


def angle_deg(a: F64, b: F64) -> float:
    """Angle between two directions, degrees."""
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def look(eye: F64, target: F64, roll_deg: float = 0.0) -> F64:
    """``[4, 4]`` OpenCV world → camera at ``eye`` aimed at ``target`` in the z-up world,
    rolled by ``roll_deg`` about the view axis (straight down: image up = world +y)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, Z)
    if np.linalg.norm(right) < 1e-9:
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    right, down = c * right + s * down, -s * right + c * down
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward])
    pose[:3, 3] = -pose[:3, :3] @ eye
    return pose


def orbit_eye(target: F64, distance: float, azimuth: float, pitch_deg: float) -> F64:
    """A camera position ``distance`` from ``target``, ``pitch_deg`` above it."""
    p = math.radians(pitch_deg)
    return target + distance * np.array(
        [math.cos(p) * math.cos(azimuth), math.cos(p) * math.sin(azimuth), math.sin(p)]
    )


def track_lengths(poses: F64, points: F64, max_depth: float = 10.0) -> NDArray[np.int64]:
    """``[P]`` cameras whose view (±35° × ±27°, depth 0.05..``max_depth``) holds each point."""
    local = np.einsum("nij,pj->npi", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    depth = local[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = (
            (depth > 0.05)
            & (depth < max_depth)
            & (np.abs(local[..., 0]) <= math.tan(HALF_FOV_X) * depth)
            & (np.abs(local[..., 1]) <= math.tan(HALF_FOV_Y) * depth)
        )
    return np.asarray(inside.sum(axis=0), dtype=np.int64)


def _finish(name: str, poses: F64, points: F64, center: F64, rng: np.random.Generator) -> Capture:
    """Keep points two views see, then turn and shift the whole capture at random."""
    counts = track_lengths(poses, points)
    points, counts = points[counts >= 2], counts[counts >= 2]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    shift = rng.normal(size=3) * 3.0
    world = np.eye(4)
    world[:3, :3], world[:3, 3] = R, shift
    turned = poses @ np.linalg.inv(world)  # cameras see the same scene in the new world
    return Capture(name, turned, points @ R.T + shift, counts, R @ Z, R @ Z, R @ center + shift)


def _disc(rng: np.random.Generator, n: int, radius: float, z: float, noise: float) -> F64:
    r = radius * np.sqrt(rng.uniform(size=n))
    t = rng.uniform(0, 2 * math.pi, size=n)
    return np.stack([r * np.cos(t), r * np.sin(t), z + rng.normal(0, noise, n)], axis=1)


def _box_surface(rng: np.random.Generator, n: int, low: F64, high: F64) -> F64:
    """Points on the faces of an axis-aligned box (bottom face left out)."""
    points = rng.uniform(low, high, size=(n, 3))
    face = rng.integers(0, 5, size=n)
    for axis in range(2):
        points[face == 2 * axis, axis] = low[axis]
        points[face == 2 * axis + 1, axis] = high[axis]
    points[face == 4, 2] = high[2]
    return points


def tabletop(views: int, pitch: tuple[float, float], seed: int = 0, roll: float = 10.0) -> Capture:
    """An object on a round table, cameras orbiting it at ``pitch`` (degrees below the
    horizon) and up to ``±roll`` degrees of roll; background clutter all around."""
    rng = np.random.default_rng(seed)
    target = np.array([0.0, 0.0, 0.12])
    azimuths = np.linspace(0, 2 * math.pi, views, endpoint=False) + rng.uniform(0, 0.5, views)
    poses = []
    for azimuth in azimuths:
        eye = orbit_eye(target, rng.uniform(0.9, 1.4), azimuth, rng.uniform(*pitch))
        aim = target + rng.normal(0, 0.04, 3)
        poses.append(look(eye, aim, rng.uniform(-roll, roll)))
    table = _disc(rng, 3000, 1.2, 0.0, 0.002)
    thing = _box_surface(rng, 1200, np.array([-0.15, -0.1, 0.0]), np.array([0.15, 0.1, 0.25]))
    clutter = rng.uniform([-4, -4, -1.5], [4, 4, 2.5], size=(1200, 3))
    points = np.concatenate([table, thing, clutter])
    name = f"tabletop {views}v pitch {pitch[0]:g}-{pitch[1]:g} points"
    return _finish(name, np.stack(poses), points, target, rng)


def room(views: int, pitch: tuple[float, float], seed: int = 0, roll: float = 10.0) -> Capture:
    """A walk through a 6 × 5 × 2.6 m room: cameras at head height, any heading, looking
    ``pitch`` degrees down; points on the floor, walls, ceiling and furniture."""
    rng = np.random.default_rng(seed)
    size = np.array([6.0, 5.0, 2.6])
    poses = []
    for _ in range(views):
        eye = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-1.2, 1.2), rng.uniform(1.3, 1.7)])
        heading, p = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(*pitch))
        ahead = np.array([math.cos(p) * math.cos(heading), math.cos(p) * math.sin(heading)])
        poses.append(look(eye, eye + np.append(ahead, -math.sin(p)), rng.uniform(-roll, roll)))
    points = np.concatenate([_room_surfaces(rng, size), _furniture(rng)])
    name = f"room {views}v pitch {pitch[0]:g}-{pitch[1]:g} points"
    return _finish(name, np.stack(poses), points, np.array([0.0, 0.0, 1.0]), rng)


def _room_surfaces(rng: np.random.Generator, size: F64) -> F64:
    half = size / 2
    floor = np.column_stack([rng.uniform(-half[:2], half[:2], size=(2500, 2)), np.zeros(2500)])
    ceiling = floor[:600].copy()
    ceiling[:, 2] = size[2]
    walls = rng.uniform([-half[0], -half[1], 0], [half[0], half[1], size[2]], size=(3500, 3))
    side = rng.integers(0, 4, size=len(walls))
    walls[side == 0, 0], walls[side == 1, 0] = -half[0], half[0]
    walls[side == 2, 1], walls[side == 3, 1] = -half[1], half[1]
    noisy = np.concatenate([floor, ceiling, walls])
    return noisy + rng.normal(0, 0.005, noisy.shape)


def _furniture(rng: np.random.Generator) -> F64:
    sofa = _box_surface(rng, 500, np.array([-2.5, 1.0, 0.0]), np.array([-0.5, 2.2, 0.8]))
    desk = _box_surface(rng, 500, np.array([1.5, -2.3, 0.0]), np.array([2.8, -1.5, 0.75]))
    return np.concatenate([sofa, desk])


def book_on_desk(seed: int = 0) -> Capture:
    """The issue's scan: a book on a desk, 7 hand-held frames from one side, looking down
    55–70°; the desk, the book and the floor and wall beyond the desk's edge."""
    rng = np.random.default_rng(seed)
    target = np.array([0.0, 0.0, 0.02])
    poses = []
    for azimuth in np.radians(np.linspace(-20, 20, 7) + 200):
        eye = orbit_eye(target, rng.uniform(0.45, 0.6), azimuth, rng.uniform(55, 70))
        poses.append(look(eye, target + rng.normal(0, 0.02, 3), rng.uniform(-5, 5)))
    desk = rng.uniform([-0.7, -0.4, 0.0], [0.5, 0.4, 0.0], size=(2500, 3))
    desk[:, 2] += rng.normal(0, 0.001, len(desk))
    book = _box_surface(rng, 800, np.array([-0.12, -0.09, 0.0]), np.array([0.12, 0.09, 0.03]))
    floor = np.column_stack([rng.uniform([-3, -2], [-0.7, 2], size=(600, 2)), np.full(600, -0.75)])
    wall = np.column_stack([np.full(600, -2.5), rng.uniform([-2, -0.75], [2, 1.5], size=(600, 2))])
    points = np.concatenate([desk, book, floor, wall])
    return _finish("book on desk 7v pitch 55-70 points", np.stack(poses), points, target, rng)


def identical_orientations(views: int = 10, pitch: float = 30.0, seed: int = 0) -> Capture:
    """``views`` cameras with one and the same orientation (``pitch`` down, no roll), side by
    side, over a table."""
    rng = np.random.default_rng(seed)
    target = np.array([0.0, 0.0, 0.0])
    base = look(orbit_eye(target, 1.0, 0.0, pitch), target)
    poses = []
    for offset in np.linspace(-0.4, 0.4, views):
        pose = base.copy()
        eye = orbit_eye(target, 1.0, 0.0, pitch) + np.array([0.0, offset, 0.0])
        pose[:3, 3] = -pose[:3, :3] @ eye
        poses.append(pose)
    points = np.concatenate([_disc(rng, 3000, 1.5, 0.0, 0.002), rng.uniform(-3, 3, (600, 3))])
    name = f"identical orientations {views}v pitch {pitch:g} points"
    return _finish(name, np.stack(poses), points, target, rng)


def two_views(seed: int = 0, roll: float = 10.0, apart_deg: float = 90.0) -> Capture:
    """Two views of a tabletop object, ``apart_deg`` apart in azimuth, pitched 30–45°."""
    rng = np.random.default_rng(seed)
    target = np.array([0.0, 0.0, 0.1])
    poses = []
    for azimuth in (0.0, math.radians(apart_deg)):
        eye = orbit_eye(target, 1.0, azimuth, rng.uniform(30, 45))
        poses.append(look(eye, target, rng.uniform(-roll, roll)))
    table = _disc(rng, 3000, 1.2, 0.0, 0.002)
    thing = _box_surface(rng, 800, np.array([-0.1, -0.1, 0.0]), np.array([0.1, 0.1, 0.2]))
    name = f"two views {apart_deg:g} deg apart roll {roll:g} points"
    return _finish(name, np.stack(poses), np.concatenate([table, thing]), target, rng)


def straight_down(views: int = 12, seed: int = 0) -> Capture:
    """Cameras looking straight down at a table from different headings (a top-down scan)."""
    rng = np.random.default_rng(seed)
    poses = []
    for heading in rng.uniform(0, 2 * math.pi, views):
        eye = np.array([*rng.uniform(-0.3, 0.3, 2), 1.0])
        pose = look(eye, eye - Z)
        turn = np.array([[math.cos(heading), -math.sin(heading), 0],
                         [math.sin(heading), math.cos(heading), 0], [0, 0, 1]])  # fmt: skip
        pose[:3, :3] = turn @ pose[:3, :3]  # spin about the view axis
        pose[:3, 3] = -pose[:3, :3] @ eye
        poses.append(pose)
    table = _disc(rng, 3000, 1.0, 0.0, 0.002)
    name = f"straight down {views}v points"
    return _finish(name, np.stack(poses), table, np.zeros(3), rng)


PITCH_BANDS: tuple[tuple[float, float], ...] = (
    (0.0, 15.0), (30.0, 45.0), (60.0, 75.0), (0.0, 75.0),
)  # fmt: skip
VIEW_COUNTS: tuple[int, ...] = (5, 20, 200)


def generated_cases(seed: int = 0) -> list[Capture]:
    """Tabletop and room captures for every view count and pitch band, with points; call
    :meth:`Capture.without_points` for the cameras-only variants."""
    cases = []
    for kind in (tabletop, room):
        for views in VIEW_COUNTS:
            for band in PITCH_BANDS:
                cases.append(kind(views, band, seed=seed + views))
    return cases
