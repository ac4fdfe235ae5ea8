"""Validation rules the real services enforce, with messages that name the broken rule.

- Domain data `name` / `data_type` (protocol §1.10, §2.12): 1–128 bytes of UTF-8, no control
  characters, none of the server's disallowed characters.
- Capabilities (§1.10): 1–100 of them, each 1–256 characters, no control characters, no
  duplicates.
- Failure reasons (§1.10): at most 4096 bytes.
- Node versions (§1.4): semver.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

DISALLOWED_NAME_CHARS = frozenset(';!?<>[]{}()/\\"$#@*^&|~%=+')
NAME_MAX_BYTES = 128
CAPABILITY_MAX_CHARS = 256
MAX_CAPABILITIES = 100
FAILURE_REASON_MAX_BYTES = 4096

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)


def name_rule_violation(field: str, value: str) -> str | None:
    """Why `value` is not a valid `field` (`name` or `data_type`), or None if it is."""
    size = len(value.encode("utf-8"))
    if not 1 <= size <= NAME_MAX_BYTES:
        return f"{field} must be 1–{NAME_MAX_BYTES} bytes long (got {size})"
    for char in value:
        if unicodedata.category(char) == "Cc":
            return f"{field} contains a control character (U+{ord(char):04X})"
        if char in DISALLOWED_NAME_CHARS:
            return f"{field} contains disallowed character {char!r}"
    return None


def capabilities_violation(capabilities: list[str]) -> str | None:
    """Why a registration's capability list is unacceptable, or None."""
    if not 1 <= len(capabilities) <= MAX_CAPABILITIES:
        return f"capabilities must list 1–{MAX_CAPABILITIES} entries (got {len(capabilities)})"
    if len(set(capabilities)) != len(capabilities):
        return "capabilities contain duplicates"
    for capability in capabilities:
        if not 1 <= len(capability) <= CAPABILITY_MAX_CHARS:
            return f"capability must be 1–{CAPABILITY_MAX_CHARS} characters: {capability!r}"
        if any(unicodedata.category(char) == "Cc" for char in capability):
            return f"capability contains a control character: {capability!r}"
    return None


def is_semver(version: str) -> bool:
    """Semantic Versioning 2.0.0 (no leading `v`)."""
    return _SEMVER.fullmatch(version) is not None


def is_uuid(text: str) -> bool:
    """Canonical hyphenated UUID, any case."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
