"""Domain contents for runner tests: a refined manifest, its recordings and COLMAP binaries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from app.runner.naming import COLMAP_BINARIES
from tests.app.fakes import FakeDomain

SUFFIX = "_2025-01-02_03-04-05"
SCAN_BY_NAME = "2025-01-01_10-00-00"
SCAN_BY_ID = "2025-01-01_11-00-00"


@dataclass
class RefinedScene:
    """What :func:`seed_refined_scene` put into the domain."""

    domain: FakeDomain
    manifest_id: str
    recording_by_id: str
    colmap_ids: dict[str, str] = field(default_factory=dict)

    @property
    def cid(self) -> str:
        return f"http://127.0.0.1:9/api/v1/domains/{self.domain.domain_id}/data/{self.manifest_id}"


def seed_refined_scene(
    domain: FakeDomain | None = None,
    *,
    manifest_name: str = f"refined_manifest{SUFFIX}",
    colmap: tuple[str, ...] = tuple(prefix for prefix, _ in COLMAP_BINARIES),
    extra_data_ids: tuple[str, ...] = (),
) -> RefinedScene:
    """The case-37 layout: one recording found by derived name, one by id, COLMAP binaries."""
    domain = domain or FakeDomain()
    by_id = domain.add(f"dmt_recording_{SCAN_BY_ID}", "dmt_recording_mp4", b"video-by-id")
    domain.add(f"dmt_recording_{SCAN_BY_NAME}", "dmt_recording_mp4", b"video-by-name")
    manifest = {"dataIDs": [f"refined_scan_{SCAN_BY_NAME}", by_id, *extra_data_ids]}
    manifest_id = domain.add(manifest_name, "refined_manifest_json", json.dumps(manifest).encode())
    scene = RefinedScene(domain, manifest_id, by_id)
    for prefix in colmap:
        scene.colmap_ids[prefix] = domain.add(f"{prefix}{SUFFIX}", prefix, prefix.encode())
    return scene
