"""Names derived by the runner (protocol §3.3 steps 3 and 6b, §3.6)."""

from __future__ import annotations

import pytest

from app.runner.naming import (
    derive_scan_id,
    recording_folder,
    refinement_suffix,
    suffixed_artifact_name,
    unsafe_component_reason,
)


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("refined_manifest_2025-01-02_03-04-05", "_2025-01-02_03-04-05"),
        ("refined_manifest", ""),
        ("refined_manifestX", "X"),
        ("dmt_manifest_2025-01-02_03-04-05", None),
        (None, None),
    ],
)
def test_the_suffix_is_what_follows_refined_manifest(name: str | None, suffix: str | None) -> None:
    assert refinement_suffix(name) == suffix


@pytest.mark.parametrize(
    ("suffix", "name"),
    [
        ("_2025", "refined_splat_2025"),
        ("2025", "refined_splat_2025"),
        ("", "refined_splat"),
        (None, "refined_splat"),
    ],
)
def test_suffixed_artifact_names_join_the_suffix_with_one_underscore(
    suffix: str | None, name: str
) -> None:
    assert suffixed_artifact_name("refined_splat", suffix) == name


@pytest.mark.parametrize(
    ("raw", "scan"),
    [
        ("refined_scan_2025-01-01_10-00-00", "2025-01-01_10-00-00"),
        ("  dmt_recording_2025-01-01_10-00-00.mp4 ", "2025-01-01_10-00-00"),
        ("dmt_recording_x.mp4.mp4", "x"),
        ("2025-01-01_10-00-00", "2025-01-01_10-00-00"),
        ("6f1c2b1e-4a7d-4b8e-9d0a-3c2b1a0f9e8d", None),
        ("https://ds.example/api/v1/domains/d/data/i", None),
        ("http://x", None),
        ("   ", None),
    ],
)
def test_scan_ids_are_derived_like_the_reference(raw: str, scan: str | None) -> None:
    assert derive_scan_id(raw) == scan


def test_a_recording_found_by_id_lands_in_its_name_without_the_prefix_or_its_id() -> None:
    assert recording_folder("dmt_recording_2025-01-01_10-00-00", "id-1") == "2025-01-01_10-00-00"
    assert recording_folder("dmt_recording_", "id-1") == "id-1"
    assert recording_folder("dmt_recording_a.mp4", "id-1") == "a.mp4"  # not stripped here


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("..", "it is empty or a relative path step"),
        ("", "it is empty or a relative path step"),
        ("../../x", "it contains a path separator"),
        ("a\\b", "it contains a path separator"),
        ("a\nb", "it contains a control character"),
        ("x" * 256, "it is longer than 255 bytes"),
        ("2025-01-01_10-00-00", None),
        ("..x", None),
    ],
)
def test_folder_names_must_be_one_safe_path_component(name: str, reason: str | None) -> None:
    assert unsafe_component_reason(name) == reason
