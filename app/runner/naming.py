"""Names the splatter runner derives: refinement suffix, scan ids, folders, artifact names.

All rules are those of the reference runner (protocol §3.3, §3.6), plus one of ours: a name that
becomes a folder must be one safe path component, so a manifest cannot write outside the job.
"""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath

from pipeline.contract import (
    COLMAP_FILES,
    PREVIEW_ANGLE,
    PREVIEW_TOP,
    PREVIEW_VIDEO,
    REPORT_JSON,
    SOG_FILE,
)

__all__ = [
    "COLMAP_BINARIES",
    "PREVIEW_OUTPUTS",
    "RECORDING_PREFIX",
    "REPORT_OUTPUT",
    "SOG_OUTPUT",
    "SPLAT_DATA_TYPE",
    "SPLAT_NAME",
    "colmap_data_type",
    "derive_scan_id",
    "is_uuid",
    "recording_folder",
    "refinement_suffix",
    "suffixed_artifact_name",
    "unsafe_component_reason",
]


def colmap_data_type(file_name: str) -> str:
    """The domain name prefix (= data type) of a COLMAP binary: ``points3D.bin`` →
    ``colmap_points3d_bin``."""
    path = PurePosixPath(file_name)
    return f"colmap_{path.stem.lower()}_{path.suffix.removeprefix('.')}"


#: (name prefix = data type, file name under refined/global/refined_sfm_combined/), in order.
COLMAP_BINARIES: tuple[tuple[str, str], ...] = tuple(
    (colmap_data_type(name), name) for name in COLMAP_FILES
)
#: Name base and data type of the required output, :data:`pipeline.contract.SPLAT_FILE`.
SPLAT_NAME = "refined_splat"
SPLAT_DATA_TYPE = "splat_data"
#: (output file name, data type, name base), uploaded best effort in this order (V1).
PREVIEW_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    (PREVIEW_TOP, "splat_preview_top", "refined_splat_preview_top"),
    (PREVIEW_ANGLE, "splat_preview_angle", "refined_splat_preview_angle"),
    (PREVIEW_VIDEO, "splat_preview_video", "refined_splat_preview_video"),
)
#: (file under refined/splatter/, data type, name base) of the quality report, uploaded best
#: effort after the previews.
REPORT_OUTPUT: tuple[str, str, str] = (REPORT_JSON, "splat_report_json", "refined_splat_report")
#: Name prefix of a recording in the domain: ``dmt_recording_<scan>[.mp4]``.
RECORDING_PREFIX = "dmt_recording_"
#: (file under refined/splatter/, data type, name base) of the SOG (V2), uploaded best effort
#: before the .splat.
SOG_OUTPUT: tuple[str, str, str] = (SOG_FILE, "splat_data_sog", "refined_splat_sog")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MANIFEST_PREFIX = "refined_manifest"


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return True


def refinement_suffix(primary_name: str | None) -> str | None:
    """The text after ``refined_manifest`` (leading ``_`` kept), or ``None`` for other names."""
    if primary_name is not None and primary_name.startswith(_MANIFEST_PREFIX):
        return primary_name[len(_MANIFEST_PREFIX) :]
    return None


def suffixed_artifact_name(base: str, suffix: str | None) -> str:
    """``base`` + suffix: ``refined_splat_<ts>`` from ``_<ts>`` or ``<ts>``; no suffix → base."""
    if not suffix:
        return base
    return f"{base}{suffix}" if suffix.startswith("_") else f"{base}_{suffix}"


def derive_scan_id(raw: str) -> str | None:
    """A ``dataIDs`` entry → the scan id whose recording to look up by name, or ``None``.

    ``refined_scan_<X>`` → ``X``; ``dmt_recording_<X>[.mp4]`` → ``X``; URLs, UUIDs and blank
    entries → ``None``; anything else → itself (trimmed).
    """
    text = raw.strip()
    if not text or text.startswith(("http://", "https://")):
        return None
    if text.startswith("refined_scan_"):
        return text.removeprefix("refined_scan_")
    if text.startswith(RECORDING_PREFIX):
        return _strip_mp4(text.removeprefix(RECORDING_PREFIX))
    if is_uuid(text):
        return None
    return text


def recording_folder(recording_name: str, data_id: str) -> str:
    """Folder of a recording found by id: its name without ``dmt_recording_`` (else the id)."""
    return recording_name.removeprefix(RECORDING_PREFIX) or data_id


def unsafe_component_reason(name: str) -> str | None:
    """Why ``name`` cannot be one folder under ``datasets/``, or ``None`` when it can."""
    if name in ("", ".", ".."):
        return "it is empty or a relative path step"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if _CONTROL.search(name):
        return "it contains a control character"
    if len(name.encode("utf-8")) > 255:
        return "it is longer than 255 bytes"
    return None


def _strip_mp4(text: str) -> str:
    # The reference strips every trailing ".mp4" (Rust trim_end_matches).
    while text.endswith(".mp4"):
        text = text[: -len(".mp4")]
    return text
