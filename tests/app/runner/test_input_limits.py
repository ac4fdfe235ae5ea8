"""The node's settings become the input bounds: sizes, the dataIDs cap, and a free-disk check
that runs while downloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.runner import SplatterJobError
from app.runner.inputs import InputLimits
from tests.app.factories import make_settings


def test_the_settings_set_every_bound(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        splatter_max_manifest_bytes=4096,
        splatter_max_data_ids=7,
        splatter_max_download_bytes=8192,
    )
    limits = InputLimits.from_settings(settings)
    assert (limits.max_manifest_bytes, limits.max_data_ids) == (4096, 7)
    manifest, download = limits.manifest_bounds(), limits.download_bounds()
    assert (manifest.max_bytes, manifest.limit_name) == (4096, "SPLATTER_MAX_MANIFEST_BYTES")
    assert (download.max_bytes, download.limit_name) == (8192, "SPLATTER_MAX_DOWNLOAD_BYTES")
    assert manifest.on_progress is None


def test_the_download_check_fails_once_free_disk_falls_under_the_floor(tmp_path: Path) -> None:
    roomy = InputLimits.from_settings(make_settings(tmp_path, min_free_disk_mb=0))
    full = InputLimits.from_settings(make_settings(tmp_path, min_free_disk_mb=1 << 40))
    check, failing = roomy.download_bounds().on_progress, full.download_bounds().on_progress
    assert check is not None and failing is not None
    check(64 << 20)
    with pytest.raises(SplatterJobError, match=r"^insufficient disk space: .*\(MIN_FREE_DISK_MB\)"):
        failing(64 << 20)


def test_defaults_match_the_settings_defaults(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    limits = InputLimits()
    assert (limits.max_manifest_bytes, limits.max_data_ids, limits.max_download_bytes) == (
        settings.splatter_max_manifest_bytes,
        settings.splatter_max_data_ids,
        settings.splatter_max_download_bytes,
    )
