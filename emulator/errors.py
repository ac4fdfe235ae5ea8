"""The one exception the emulator's services raise; `app.py` turns it into a JSON response.

Every rejection carries the HTTP status the real service would answer with and a `detail`
sentence that names the broken rule, e.g. `name contains disallowed character '/'`.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """A request the emulated service rejects: `status` + `detail` (+ extra response headers)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def bad_request(detail: str) -> EmulatorError:
    """400: malformed or rule-breaking input."""
    return EmulatorError(400, detail)


def unauthorized(detail: str) -> EmulatorError:
    """401 with a Bearer challenge: missing, malformed, expired or foreign token."""
    return EmulatorError(401, detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def forbidden(detail: str) -> EmulatorError:
    """403: authenticated but not allowed (e.g. SIWE login of an unregistered wallet)."""
    return EmulatorError(403, detail)


def not_found(detail: str) -> EmulatorError:
    """404: unknown id."""
    return EmulatorError(404, detail)


def conflict(detail: str) -> EmulatorError:
    """409: state conflict (busy node, duplicate name, cancelled task)."""
    return EmulatorError(409, detail)


def gone(detail: str) -> EmulatorError:
    """410: a lease that existed but expired, ended or moved to another node."""
    return EmulatorError(410, detail)


def too_large(detail: str) -> EmulatorError:
    """413: a body or item above a configured limit."""
    return EmulatorError(413, detail)
