"""The progress values of protocol §3.7 (V1 with previews, the training span in between), as
predicates: every value a node reports must be one of these shapes, in non-decreasing order.

Heartbeats and progress relays have replace semantics (updates in flight are coalesced), so a
receiver may miss intermediate values; it never sees them out of order or in another shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.contract import STAGES

COUNTERS = ("datasets", "metadata_chunks", "metadata_items", "recording_failures",
            "colmap_downloaded", "colmap_failed")  # fmt: skip
UPLOADED = ("uploaded_splat", "uploaded_previews", "uploaded_preview_video")
#: What the final value may add (#12): the quality report's artifact and its held-out metrics.
REPORTED = ("uploaded_report", "metrics")
TRAINING = ("step", "total", "loss", "gaussians", "eta_s", "stage_pct")


def kind_of(progress: dict[str, Any]) -> str:
    """Which §3.7 step a progress value is; raises AssertionError for any other shape."""
    keys = set(progress)
    head = (progress.get("pct"), progress.get("stage"), progress.get("status"))
    shapes: dict[tuple[Any, Any, Any], tuple[str, set[str]]] = {
        (5, "workspace", "prepared"): ("workspace", {"job_root"}),
        (20, "inputs", "materialized"): ("inputs", set(COUNTERS)),
        (35, "python", "starting"): ("python starting", {"job_root_path", "script"}),
        (80, "python", "completed"): ("python completed", {"duration_ms"}),
        (90, "upload", "starting"): ("upload starting", {"artifact"}),
        (92, "upload", "splat_uploaded"): ("splat uploaded", {"uploaded", "splat_path"}),
        (95, "upload", "completed"): ("upload completed", set(UPLOADED)),
    }
    if head in shapes:
        kind, extra = shapes[head]
        assert keys == {"pct", "stage", "status", *extra}, progress
        return kind
    if progress.get("status") == "running":
        assert progress["stage"] == "python" and progress["pipeline_stage"] in STAGES, progress
        assert 35 <= progress["pct"] <= 80, progress
        extra = keys - {"pct", "stage", "status", "pipeline_stage"}
        assert extra in (set(), set(TRAINING), {"stage_pct"}), progress
        return "training" if extra == set(TRAINING) else "python running"
    assert keys - set(REPORTED) == {"progress", "stage", "status", *UPLOADED}, progress
    assert (progress["progress"], progress["stage"], progress["status"]) == (
        100, "complete", "succeeded",
    )  # fmt: skip
    return "final"


def check_v1_sequence(values: Sequence[dict[str, Any]]) -> list[str]:
    """Asserts every value is a §3.7 V1 shape, ``pct`` never decreases and the last value is
    the final one; returns the kinds seen, in order."""
    kinds = [kind_of(value) for value in values]
    pcts = [value["pct"] if "pct" in value else value["progress"] for value in values]
    assert pcts == sorted(pcts), pcts
    assert kinds[-1] == "final", kinds
    return kinds
