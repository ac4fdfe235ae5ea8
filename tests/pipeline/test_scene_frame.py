"""The scene frame: up axis, centre and region of generated captures with a known vertical."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.scene_frame import FrameConfig, SceneFrame, estimate_scene_frame, frame_from_model
from pipeline.synthetic.scene import ROOM_RADIUS
from tests.pipeline.scene_captures import (
    Capture,
    angle_deg,
    book_on_desk,
    generated_cases,
    identical_orientations,
    look,
    straight_down,
    two_views,
)
from tests.pipeline.synthetic.factories import make_tiny_job

CASES = generated_cases()
FEW_VIEWS = 5


def _case(prefix: str) -> Capture:
    return next(c for c in CASES if c.name.startswith(prefix + " "))


def _estimate(capture: Capture) -> SceneFrame:
    return estimate_scene_frame(capture.world_to_cameras, capture.points, capture.track_lengths)


def _mean_image_up(capture: Capture) -> np.ndarray:
    """The old rule (``estimate_up`` before issue #14): the mean of the cameras' image-up."""
    mean = -capture.world_to_cameras[:, 1, :3].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


@pytest.mark.parametrize("capture", CASES, ids=[c.name for c in CASES])
def test_with_points_up_is_vertical_and_the_supporting_plane(capture: Capture) -> None:
    frame = _estimate(capture)
    assert angle_deg(frame.up, capture.up) <= 5.0
    assert angle_deg(frame.up, capture.plane_normal) <= 10.0


@pytest.mark.parametrize("capture", CASES, ids=[c.name for c in CASES])
def test_cameras_alone_find_the_vertical(capture: Capture) -> None:
    """The ``vertical`` rule averages the hand-held roll (uniform ±10°) out over the views, so
    20 views and more stay within 5°. Five views cannot: over 40 seeds their error has a median
    of 4.5° and a 90th percentile of 8.5° (level rooms, 12.9° at worst), so they are held to
    12° here (seeded: these captures are fixed) and reported, not hidden."""
    cams = capture.without_points()
    frame = _estimate(cams)
    assert frame.rule == "vertical"
    views = len(cams.world_to_cameras)
    assert angle_deg(frame.up, cams.up) <= (12.0 if views == FEW_VIEWS else 5.0)


def test_the_issues_book_on_a_desk_is_upright() -> None:
    capture = book_on_desk()
    frame = _estimate(capture)
    assert frame.rule == "plane"
    assert angle_deg(frame.up, capture.up) <= 1.0
    assert angle_deg(_mean_image_up(capture), capture.up) > 45.0  # what the issue saw
    assert np.linalg.norm(frame.center - capture.center) < 0.1  # on the book, in metres
    assert frame.radius < 0.5 and frame.half_height < 0.1  # the desk top, not the room


def test_identical_orientations_fall_back_to_the_image_up() -> None:
    capture = identical_orientations(pitch=30.0)
    cams = _estimate(capture.without_points())
    right = capture.world_to_cameras[0, 0, :3]
    assert cams.rule == "fallback"
    assert abs(cams.up @ right) < 1e-9  # only the pitch is unknown
    assert angle_deg(cams.up, capture.up) == pytest.approx(30.0, abs=1e-6)  # assumed level
    with_points = _estimate(capture)
    assert with_points.rule == "plane" and angle_deg(with_points.up, capture.up) <= 1.0
    level = identical_orientations(pitch=0.0).without_points()
    assert angle_deg(_estimate(level).up, level.up) < 1e-6


def test_two_views() -> None:
    exact = two_views(roll=0.0).without_points()
    frame = _estimate(exact)
    assert frame.rule == "vertical" and angle_deg(frame.up, exact.up) < 1e-6
    rolled = two_views(seed=3, roll=10.0)
    # Two right axes 90° apart, each tilted ≤ 10°: their normal is within √(10² + 10²)°.
    assert angle_deg(_estimate(rolled.without_points()).up, rolled.up) <= 14.2
    assert angle_deg(_estimate(rolled).up, rolled.up) <= 1.0


def test_cameras_looking_straight_down() -> None:
    capture = straight_down()
    for case in (capture, capture.without_points()):
        assert angle_deg(_estimate(case).up, case.up) <= 1.0  # sign from the view direction
    assert angle_deg(_mean_image_up(capture), capture.up) == pytest.approx(90.0, abs=1e-6)


def test_a_wall_is_not_taken_for_the_floor() -> None:
    """Room captures hold more wall than floor points; the plane must agree with the
    cameras' up (here, with so little floor, no plane decides)."""
    capture = _case("room 5v pitch 0-15")
    heights = (capture.points - capture.center) @ capture.up  # centre 1 m above the floor
    walls_only = capture.points[np.abs(heights) < 0.9]
    frame = estimate_scene_frame(capture.world_to_cameras, walls_only)
    assert frame.rule == "vertical" and angle_deg(frame.up, capture.up) <= 12.0


def test_frame_turns_with_the_world() -> None:
    capture = book_on_desk(seed=4)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    world = np.eye(4)
    world[:3, :3] = R
    turned = estimate_scene_frame(
        capture.world_to_cameras @ np.linalg.inv(world), capture.points @ R.T, capture.track_lengths
    )
    original = _estimate(capture)
    # Equal up to which points sit on the inlier threshold (it scales with a per-axis median).
    assert angle_deg(turned.up, R @ original.up) < 0.01
    assert np.linalg.norm(turned.center - R @ original.center) < 1e-3
    assert turned.radius == pytest.approx(original.radius, rel=1e-3)
    np.testing.assert_allclose(original.rotated(R).up, R @ original.up, atol=1e-12)


def test_vertical_rule_matches_a_brute_force_search() -> None:
    """The SVD answer against the best of ~160k directions on a fine grid (float64)."""
    capture = _case("tabletop 5v pitch 30-45").without_points()
    right = capture.world_to_cameras[:, 0, :3]
    theta = np.radians(np.arange(0.0, 180.0, 0.25))
    phi = np.radians(np.arange(0.0, 360.0, 0.5))
    t, p = np.meshgrid(theta, phi, indexing="ij")
    grid = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    cost = ((grid @ right.T) ** 2).sum(axis=1)
    best = grid[np.argmin(cost)]
    frame = _estimate(capture)
    assert min(angle_deg(frame.up, best), angle_deg(frame.up, -best)) <= 0.5


def test_centre_is_where_the_optical_axes_converge() -> None:
    """Against an independent float64 least squares: stack each axis's two normal equations."""
    capture = _case("tabletop 20v pitch 30-45").without_points()
    rotations = capture.world_to_cameras[:, :3, :3]
    centres = -np.einsum("nji,nj->ni", rotations, capture.world_to_cameras[:, :3, 3])
    rows = np.concatenate(list(rotations[:, :2]))  # camera x and y axes: ⟂ to the view axis
    rhs = np.einsum("nij,nj->ni", rotations[:, :2], centres).reshape(-1)
    reference = np.linalg.lstsq(rows, rhs, rcond=None)[0]
    frame = _estimate(capture)
    # The frame's centre sits on the up axis through the convergence point.
    offset = frame.center - reference
    assert np.linalg.norm(offset - (offset @ frame.up) * frame.up) < 1e-9
    assert np.linalg.norm(reference - capture.center) < 0.1


def test_region_holds_the_points_most_views_see() -> None:
    capture = _case("tabletop 20v pitch 30-45")
    frame = _estimate(capture)
    seen = capture.points[capture.track_lengths >= np.median(capture.track_lengths)]
    offsets = seen - frame.center
    heights = offsets @ frame.up
    radial = np.linalg.norm(offsets - np.outer(heights, frame.up), axis=1)
    inside = (radial <= frame.radius + 1e-9) & (np.abs(heights) <= frame.half_height + 1e-9)
    assert 0.7 <= inside.mean() <= 0.95  # the 85th percentiles, not every floater
    assert frame.radius < 1.3 and frame.half_height < 0.3  # the table, not the clutter


def test_a_walk_through_room_keeps_its_size() -> None:
    """Cameras looking out in every direction converge nowhere: the region comes from the
    points most views see, the room's walls and floor."""
    capture = _case("room 200v pitch 0-15")
    frame = _estimate(capture)
    assert frame.radius > 2.0  # the room is 6 × 5 m


def test_rule_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline.scene_frame"):
        _estimate(book_on_desk())
    assert "decided by the plane rule" in caplog.text


def test_frame_of_the_synthetic_job(tmp_path: Path) -> None:
    """Cameras orbit the spheres 3 m out inside a room of radius 4.5 m: the region is what
    they all look at (their view at the centre's distance), not the walls behind it."""
    frame = frame_from_model(make_tiny_job(tmp_path).model)
    assert angle_deg(frame.up, np.array([0.0, -1.0, 0.0])) <= 3.0  # gravity is +y there
    assert np.linalg.norm(frame.center[[0, 2]]) < 0.1  # on the room's axis
    assert frame.radius < 0.5 * ROOM_RADIUS


def test_plane_needs_its_share_of_the_points() -> None:
    capture = book_on_desk()
    strict = FrameConfig(min_plane_share=0.99)
    frame = estimate_scene_frame(capture.world_to_cameras, capture.points, config=strict)
    assert frame.rule != "plane"


def test_header_comments_round_trip() -> None:
    frame = SceneFrame(np.array([0.0, 0.0, 2.0]), np.array([1.0, -2.0, 0.5]), 1.5, 0.25, "vertical")
    comments = ["Up Vector: 0 0 1", *frame.header_comments()]
    back = SceneFrame.from_header_comments(comments)
    assert back is not None and back.rule == "vertical"
    np.testing.assert_allclose(back.up, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(back.center, frame.center)
    assert (back.radius, back.half_height) == (1.5, 0.25)
    assert SceneFrame.from_header_comments(comments[:-1]) is None  # no rule: incomplete
    assert SceneFrame.from_header_comments([*comments[:2], "Radius: -1", *comments[3:]]) is None
    assert SceneFrame.from_header_comments(["Up Vector: 0 0 1", "Scene Center: a b c"]) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"up": np.zeros(3)}, "up must be a finite, non-zero 3-vector"),
        ({"center": np.array([0.0, math.nan, 0.0])}, "center must be a finite 3-vector"),
        ({"radius": 0.0}, "radius must be finite and positive"),
        ({"half_height": math.inf}, "half_height must be finite and positive"),
        ({"rule": "guess"}, "rule must be one of"),
    ],
)
def test_invalid_frames_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "up": np.array([0.0, 0.0, 1.0]), "center": np.zeros(3), "radius": 1.0,
        "half_height": 1.0, "rule": "plane", **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        SceneFrame(**fields)  # type: ignore[arg-type]


def test_bad_poses_are_refused() -> None:
    with pytest.raises(ValueError, match=r"world_to_cameras must be \[N, 4, 4\]"):
        estimate_scene_frame(np.zeros((0, 4, 4)))
    pose = look(np.array([0.0, -1.0, 0.0]), np.zeros(3))
    with pytest.raises(ValueError, match=r"track_lengths must be \[2\]"):
        estimate_scene_frame(pose[None], np.zeros((2, 3)), np.ones(3))
