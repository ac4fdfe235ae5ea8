"""RFC 3339 timestamps as DMS and DDS write them.

The Rust services serialise UTC with up to nine fractional digits and a ``Z`` suffix
(``2026-04-16T10:00:00.123456789Z``); offsets such as ``+00:00`` also occur. Python keeps
microseconds, so extra digits are truncated (not rounded) before parsing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_timestamp", "parse_timestamp", "utc_now"]

_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (up to 9 fractional digits) into an aware UTC datetime.

    Raises:
        ValueError: ``text`` is not RFC 3339 with a zone designator.
    """
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{zone}")
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix (microseconds only when non-zero)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
