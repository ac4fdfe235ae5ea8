"""Up-axis accuracy of the scene frame (issue #14) on generated captures, old rule beside it.

Captures come from ``tests/pipeline/scene_captures.py`` (seeded): tabletop orbits and room
walk-throughs with 5, 20 and 200 views looking down 0–15°, 30–45°, 60–75° and anywhere in
0–75°, hand-held roll uniform in ±10°, each with its sparse points and with the cameras alone;
the issue's one-sided book-on-a-desk scan; and the degenerate sets (identical orientations,
two views, straight down). Each row is the angle between the estimated and the true vertical
in degrees; the note gives the rule that decided, the old rule's error (mean image-up, what
``estimate_up`` did) and the estimation time.
"""

from __future__ import annotations

import time

import numpy as np

from bench.table import BenchRow, BenchTable
from pipeline.scene_frame import estimate_scene_frame
from tests.pipeline.scene_captures import (
    Capture,
    angle_deg,
    book_on_desk,
    generated_cases,
    identical_orientations,
    straight_down,
    two_views,
)

TARGET_DEG = 5.0


def _old_rule(capture: Capture) -> np.ndarray:
    mean = -capture.world_to_cameras[:, 1, :3].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


def _captures() -> list[Capture]:
    extra = [book_on_desk(), identical_orientations(), two_views(), straight_down()]
    with_points = [*generated_cases(), *extra]
    return [c for capture in with_points for c in (capture, capture.without_points())]


def _row(capture: Capture) -> BenchRow:
    start = time.perf_counter()
    frame = estimate_scene_frame(capture.world_to_cameras, capture.points, capture.track_lengths)
    seconds = time.perf_counter() - start
    old = angle_deg(_old_rule(capture), capture.up)
    # Identical orientations cannot tell pitch from tilt without points: no target there.
    undecidable = capture.name.startswith("identical") and not len(capture.points)
    target = None if undecidable else TARGET_DEG
    return BenchRow(
        f"up error: {capture.name}",
        angle_deg(frame.up, capture.up),
        "deg",
        target=target,
        note=f"rule {frame.rule}; old rule {old:.2f} deg; {1000 * seconds:.0f} ms",
    )


def run(table: BenchTable) -> None:
    for capture in _captures():
        table.add(_row(capture))
