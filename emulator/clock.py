"""The emulator's notion of "now": wall-clock UTC plus an adjustable offset.

Tests move the emulator's clock forward to expire leases, nonces and tokens without sleeping.
All timestamps on the wire are RFC 3339 with a `Z` suffix (protocol §1.6, timestamp note).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """UTC wall clock with a forward offset (seconds) that tests can grow."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Current emulated time, timezone-aware UTC."""
        with self._lock:
            return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        """Current emulated time as unix seconds."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by `seconds` (must be ≥ 0); returns the new now."""
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, got {seconds} s")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()


def rfc3339(moment: datetime) -> str:
    """`2026-04-16T10:00:00.123456Z` (UTC, microseconds, `Z` suffix)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_seconds(moment: datetime) -> str:
    """`2026-04-16T10:00:00Z`: whole seconds, as SIWE `Issued At` values usually are."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_unix(seconds: float) -> datetime:
    """Unix seconds → aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
