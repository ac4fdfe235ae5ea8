"""Responses both viewer servers share: the page, its assets, fallback JPEGs, the scene JSON.

The node (``app.api.routes.viewer``) and ``python -m pipeline view`` (:mod:`.server`) serve
the same page; they differ in where files come from and who may see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from pipeline.render.types import EVAL_BACKGROUND
from pipeline.view.camera import ViewCamera
from pipeline.view.fallback import FallbackRenderer, RenderRequest
from pipeline.view.files import file_response
from pipeline.view.page import NOT_BUILT_MESSAGE, asset_path, page_html, viewer_built

__all__ = [
    "asset_response",
    "not_built_response",
    "page_response",
    "render_jpeg",
    "render_request",
    "scene_document",
]

RENDER_NICENESS = 19


def _lower_priority() -> None:
    """Runs in the render thread: the lowest CPU priority (Linux: per thread), so a fallback
    render never takes time from training or from the service's own answers."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RENDER_NICENESS)


_RENDER_POOL = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="fallback-render", initializer=_lower_priority
)


def not_built_response() -> Response:
    return PlainTextResponse(NOT_BUILT_MESSAGE, status_code=503)


def page_response(scene_url: str, title: str) -> Response:
    """The page for one scene, or ``503`` saying how to build the viewer."""
    if not viewer_built():
        return not_built_response()
    return HTMLResponse(page_html(scene_url, title), headers={"cache-control": "no-cache"})


def asset_response(relative: str, request: Request) -> Response:
    """A file of the page (``viewer.js``, ``vendor/three/...``), ``404`` if not one."""
    if relative.startswith("vendor/") and not viewer_built():
        return not_built_response()
    path = asset_path(relative)
    if path is None:
        return PlainTextResponse("no such viewer asset", status_code=404)
    return file_response(path, request)


def render_request(
    yaw: float, pitch: float | None, distance: float | None, width: int, height: int
) -> RenderRequest:
    """The query of a render route as a checked :class:`RenderRequest` (``ValueError``)."""
    request = RenderRequest(yaw, pitch, distance, width, height)
    request.check()
    return request


async def render_jpeg(renderer: FallbackRenderer, request: RenderRequest) -> Response:
    """Renders in the low-priority render thread (one frame at a time) and answers the JPEG."""
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(_RENDER_POOL, renderer.jpeg, request)
    return Response(data, media_type="image/jpeg", headers={"cache-control": "max-age=60"})


def scene_document(
    *,
    title: str,
    splat: dict[str, Any] | None,
    camera: ViewCamera | None,
    render_url: str | None,
    files: list[dict[str, Any]],
    previews: dict[str, str] | None = None,
    events_url: str | None = None,
    job: dict[str, Any] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The scene JSON the page reads (see ``web/viewer.js``).

    Args:
        title: page heading.
        splat: ``{"url", "file_type", "count"}`` of the splat to show, or ``None`` (none yet).
        camera: the first view and orbit rig in the splat's frame (``None`` without a splat).
        render_url: the fallback JPEG route.
        files: downloads, ``{"name", "url", "size"}``.
        previews: ``{"video", "top", "angle"}`` URLs that exist.
        events_url: the Server-Sent Events stream, for a job.
        job: the job's state, progress and metrics, for a job.
        message: shown when there is nothing to draw yet.
    """
    return {
        "title": title,
        "background": list(EVAL_BACKGROUND),
        "splat": splat,
        "camera": None if camera is None else camera.to_json(),
        "render_url": render_url,
        "events_url": events_url,
        "files": files,
        "previews": previews or {},
        "job": job,
        "message": message,
    }
