"""Names the splatter runner derives: refinement suffix, scan ids, folders, artifact names.

All rules are those of the reference runner (protocol §3.3, §3.6), plus one of ours: a name that
becomes a folder must be one safe path component, so a manifest cannot write outside the job.
"""

from __future__ import annotations

import re
import uuid

__all__ = [
    "COLMAP_BINARIES",
    "PREVIEW_OUTPUTS",
    "SOG_OUTPUT",
    "SPLAT_DATA_TYPE",
    "artifact_name",
    "derive_scan_id",
    "is_uuid",
    "recording_folder",
    "refinement_suffix",
    "unsafe_component_reason",
]

#: (name prefix = data type, file name under refined/global/refined_sfm_combined/), in order.
COLMAP_BINARIES: tuple[tuple[str, str], ...] = (
    ("colmap_frames_bin", "frames.bin"),
    ("colmap_images_bin", "images.bin"),
    ("colmap_cameras_bin", "cameras.bin"),
    ("colmap_points3d_bin", "points3D.bin"),
    ("colmap_rigs_bin", "rigs.bin"),
)
SPLAT_DATA_TYPE = "splat_data"
#: (file under refined/splatter/, data type, name base), uploaded best effort in this order (V1).
PREVIEW_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("preview_top.jpg", "splat_preview_top", "refined_splat_preview_top"),
    ("preview_angle.jpg", "splat_preview_angle", "refined_splat_preview_angle"),
    ("preview.mp4", "splat_preview_video", "refined_splat_preview_video"),
)
#: (file under refined/splatter/, data type, name base) of the SOG (V2), uploaded best effort
#: before the .splat.
SOG_OUTPUT: tuple[str, str, str] = ("splat_rot.sog", "splat_data_sog", "refined_splat_sog")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MANIFEST_PREFIX = "refined_manifest"
_RECORDING_PREFIX = "dmt_recording_"


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


def artifact_name(base: str, suffix: str | None) -> str:
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
    if text.startswith(_RECORDING_PREFIX):
        return _strip_mp4(text.removeprefix(_RECORDING_PREFIX))
    if is_uuid(text):
        return None
    return text


def recording_folder(recording_name: str, data_id: str) -> str:
    """Folder of a recording found by id: its name without ``dmt_recording_`` (else the id)."""
    return recording_name.removeprefix(_RECORDING_PREFIX) or data_id


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
