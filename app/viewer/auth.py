"""Who may open the viewer: the job routes' bearer rule, in a form a browser can follow.

With ``SPLATTER_API_TOKEN`` set, a request gets in with any of:

- ``Authorization: Bearer <token>`` (scripts, like every job route);
- the viewer cookie, an HMAC-SHA256 of a fixed label keyed by the token (so the cookie is not
  the token, and changing the token revokes every cookie); HttpOnly, ``SameSite=Strict``,
  path ``/`` (the node only);
- ``?token=<token>`` once: the answer sets the cookie (a page redirects to its URL without the
  token, so the token does not stay in the address bar or the history).

Without a token, the viewer is open to loopback clients, and to everyone only where the job
routes are (``SPLATTER_ALLOW_OPEN``). Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.settings import Settings, is_loopback_host

__all__ = ["COOKIE_NAME", "Access", "cookie_value", "grant_cookie", "viewer_access"]

COOKIE_NAME = "splatter_viewer"
_COOKIE_LABEL = b"splatter-node viewer cookie v1"


def cookie_value(token: str) -> str:
    """The cookie that stands for ``token`` (hex HMAC-SHA256 of a fixed label)."""
    return hmac.new(token.encode(), _COOKIE_LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Access:
    """The outcome of :func:`viewer_access`.

    Attributes:
        allowed: the request may see the viewer.
        by_query: it got in with ``?token=`` (the answer should set the cookie).
        reason: why not, when not allowed.
    """

    allowed: bool
    by_query: bool = False
    reason: str = ""


def viewer_access(request: Request, settings: Settings) -> Access:
    """Applies the rule above to ``request``."""
    expected = settings.splatter_api_token
    if expected is None:
        client = request.client.host if request.client else ""
        if settings.splatter_allow_open or is_loopback_host(client):
            return Access(True)
        return Access(False, reason="the viewer is open to loopback clients only")
    token = expected.get_secret_value()
    bearer = request.headers.get("authorization", "")
    if bearer[:7].lower() == "bearer " and _same(bearer[7:].strip(), token):
        return Access(True)
    if _same(request.cookies.get(COOKIE_NAME, ""), cookie_value(token)):
        return Access(True)
    query = request.query_params.get("token")
    if query is not None and _same(query, token):
        return Access(True, by_query=True)
    if query is not None:
        return Access(False, reason="invalid token")
    return Access(False, reason="missing token: open the link with ?token=<SPLATTER_API_TOKEN>")


def grant_cookie(response: Response, settings: Settings) -> Response:
    """Sets the viewer cookie on ``response`` (the node has a token)."""
    token = settings.splatter_api_token
    if token is not None:
        response.set_cookie(
            COOKIE_NAME,
            cookie_value(token.get_secret_value()),
            httponly=True,
            samesite="strict",
            path="/",
        )
    return response


def redirect_without_token(request: Request, settings: Settings) -> Response:
    """``303`` to the same URL minus ``token``, setting the cookie."""
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
    return grant_cookie(RedirectResponse(target, status_code=303), settings)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
