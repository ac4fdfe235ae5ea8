"""The browser page and its assets: ``web/`` (committed) and ``web/vendor/`` (built).

``web/vendor/`` holds SparkJS and three.js, copied from ``node_modules`` by ``make viewer``
(``package.json`` / ``package-lock.json`` pin them); it is git-ignored. Without it the viewer
routes answer ``503`` with :data:`NOT_BUILT_MESSAGE`. The page never loads anything from
outside the server (no CDN): everything it imports is served under :data:`ASSETS_PREFIX`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = [
    "ASSETS_PREFIX",
    "NOT_BUILT_MESSAGE",
    "WEB_DIR",
    "asset_path",
    "page_html",
    "viewer_built",
]

WEB_DIR = Path(__file__).parent / "web"
VENDOR_DIR = WEB_DIR / "vendor"
ASSETS_PREFIX = "/viewer/assets"
_BUILT_MARKER = VENDOR_DIR / ".built"
_ASSET_SUFFIXES = (".js", ".css", ".html")

NOT_BUILT_MESSAGE = (
    "the viewer is not built: its front-end packages (SparkJS, three.js) are missing from "
    f"{VENDOR_DIR}. Run `make viewer` in the project folder (needs Node.js and npm; it runs "
    "`npm ci` and copies the files), then reload."
)


def viewer_built() -> bool:
    """True when ``make viewer`` has copied the vendored packages."""
    return _BUILT_MARKER.is_file()


def asset_path(relative: str) -> Path | None:
    """The file under ``web/`` for an asset URL path, or ``None`` if it is not one we serve."""
    candidate = (WEB_DIR / relative).resolve()
    web = WEB_DIR.resolve()
    if web not in candidate.parents or candidate.suffix not in _ASSET_SUFFIXES:
        return None
    return candidate if candidate.is_file() else None


def page_html(scene_url: str, title: str, extra: dict[str, Any] | None = None) -> str:
    """The viewer page for one scene (``scene_url`` answers the scene JSON)."""
    template = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    config = {"scene": scene_url, "assets": ASSETS_PREFIX, **(extra or {})}
    return (
        template.replace("{{TITLE}}", html.escape(title))
        .replace("{{ASSETS}}", ASSETS_PREFIX)
        .replace("{{CONFIG}}", html.escape(json.dumps(config), quote=True))
    )
