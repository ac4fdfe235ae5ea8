"""Naming rules for domain data (protocol §2.10–2.12) and the local download layout.

Names and data types are checked before any request: 1–128 bytes of UTF-8, no control
characters, none of the server's disallowed characters, and (this node's addition, because names
become file names) no ``..``. Every refusal raises :class:`NameRuleError` naming the rule.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from domain_client.errors import NameRuleError

__all__ = [
    "DISALLOWED_CHARACTERS",
    "MAX_NAME_BYTES",
    "check_data_type",
    "check_name",
    "check_rel_path",
    "dataset_folder",
    "generated_artifact_name",
    "infer_data_type",
    "join_logical_path",
    "local_file_name",
    "sanitize",
]

MAX_NAME_BYTES = 128
DISALLOWED_CHARACTERS = frozenset(';!?<>[]{}()/\\"$#@*^&|~%=+')
"""Characters the domain server refuses in names and data types ("disallowedchars.go")."""

_DISALLOWED_LISTING = " ".join(sorted(DISALLOWED_CHARACTERS))
_SCAN_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[_-]\d{2}-\d{2}-\d{2}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_KNOWN_EXTENSIONS = {
    "json": "json",
    "ply": "ply",
    "drc": "ply_draco",
    "glb": "glb",
    "obj": "obj",
    "csv": "csv",
    "mp4": "mp4",
}


def check_name(value: str, field: str = "name") -> str:
    """Return ``value`` if it is a valid domain-data name, else raise NameRuleError."""
    size = len(value.encode("utf-8"))
    if not 1 <= size <= MAX_NAME_BYTES:
        raise NameRuleError(
            field, value, f"must be 1 to {MAX_NAME_BYTES} bytes long, is {size} (rule: length)"
        )
    _check_control_characters(value, field)
    for char in value:
        if char in DISALLOWED_CHARACTERS:
            raise NameRuleError(
                field,
                value,
                f"character {char!r} is not allowed "
                f"(rule: disallowed characters {_DISALLOWED_LISTING})",
            )
    if ".." in value:
        raise NameRuleError(field, value, "contains '..' (rule: no path traversal)")
    return value


def check_data_type(value: str) -> str:
    """Return ``value`` if it is a valid data type (same rules as names)."""
    return check_name(value, "data_type")


def check_rel_path(value: str) -> str:
    """A logical ``rel_path`` may contain ``/`` but no control characters and no ``..`` segment."""
    _check_control_characters(value, "rel_path")
    if ".." in PurePosixPath(value).parts:
        raise NameRuleError("rel_path", value, "has a '..' segment (rule: no path traversal)")
    return value


def _check_control_characters(value: str, field: str) -> None:
    for char in value:
        if unicodedata.category(char) == "Cc":
            raise NameRuleError(
                field,
                value,
                f"contains control character U+{ord(char):04X} (rule: no control characters)",
            )


def sanitize(value: str, empty: str = "artifact") -> str:
    """Keep ASCII letters, digits, ``-`` and ``_``; everything else becomes ``_``."""
    cleaned = _UNSAFE.sub("_", value)
    return cleaned or empty


def join_logical_path(outputs_prefix: str | None, rel_path: str) -> str:
    """``<prefix>/<rel_path>`` with the prefix trimmed of ``/`` and rel_path of a leading ``/``."""
    prefix = (outputs_prefix or "").strip("/")
    rel = rel_path.lstrip("/")
    if not prefix:
        return rel
    return f"{prefix}/{rel}" if rel else prefix


def generated_artifact_name(logical_path: str, task_id: str) -> str:
    """The generated name of a path-only upload: ``sanitize(logical_path)_<task_id>`` (§2.10)."""
    return f"{sanitize(logical_path.replace('/', '_'))}_{task_id}"


def infer_data_type(rel_path: str) -> str:
    """Data type from the extension of ``rel_path`` (case-insensitive, §2.10)."""
    suffix = PurePosixPath(rel_path).suffix.lower().removeprefix(".")
    if not suffix:
        return "binary"
    return _KNOWN_EXTENSIONS.get(suffix, f"{sanitize(suffix)}_data")


def dataset_folder(name: str) -> str:
    """Folder of a downloaded item: its scan timestamp if it has one, else the sanitised name."""
    match = _SCAN_TIMESTAMP.search(name)
    return match.group(0) if match else sanitize(name, empty="part")


def local_file_name(name: str, data_type: str) -> str:
    """``<sanitize(name)>.<sanitize(data_type)>`` (protocol §2.11)."""
    return f"{sanitize(name, empty='part')}.{sanitize(data_type, empty='part')}"
