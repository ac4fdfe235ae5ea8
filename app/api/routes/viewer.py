"""The browser viewer: ``/viewer``, ``/jobs/{id}/view`` and what the page reads.

Every route follows :mod:`app.viewer.auth` (bearer, the viewer cookie, ``?token=`` once, or
loopback without a token); the page's own scripts under ``/viewer/assets`` are public (they
hold nothing of the node's). Without ``make viewer``'s files the pages answer ``503`` saying
how to build them; files, events and fallback renders work regardless.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from app.api.deps import ServicesDep, SettingsDep
from app.records import JobRecord
from app.services import Services
from app.settings import Settings
from app.viewer.auth import grant_cookie, redirect_without_token, viewer_access
from app.viewer.events import job_event_stream, parse_last_event_id
from app.viewer.scenes import latest_metrics
from pipeline.contract import PREVIEW_TOP
from pipeline.view.files import file_response
from pipeline.view.page import viewer_built
from pipeline.view.routes import (
    asset_response,
    not_built_response,
    page_response,
    render_jpeg,
    render_request,
)

router = APIRouter(tags=["viewer"])

_LIST_LIMIT = 50


class _Denied(HTTPException):
    def __init__(self, reason: str) -> None:
        super().__init__(401, reason, headers={"WWW-Authenticate": "Bearer"})


def _check(request: Request, settings: Settings) -> bool:
    """Raises 401 unless the request may see the viewer; ``True`` if it came by ``?token=``."""
    access = viewer_access(request, settings)
    if not access.allowed:
        raise _Denied(access.reason)
    return access.by_query


def _job(services: Services, job_id: str) -> JobRecord:
    return services.jobs.get(job_id)  # JobNotFoundError → 404


@router.get("/viewer/assets/{relative:path}", include_in_schema=False)
async def viewer_asset(relative: str, request: Request) -> Response:
    """The page's scripts, styles and vendored SparkJS / three.js (public)."""
    return asset_response(relative, request)


@router.get("/viewer", response_class=HTMLResponse, summary="Recent jobs, to view")
async def viewer_index(request: Request, settings: SettingsDep, services: ServicesDep) -> Response:
    """Recent jobs with their preview still, state and held-out PSNR, each linking its page."""
    if _check(request, settings):
        return redirect_without_token(request, settings)
    if not viewer_built():
        return not_built_response()
    rows = []
    for record in services.jobs.store.list_jobs(limit=_LIST_LIMIT):
        rows.append(_index_row(record, services))
    body = "\n".join(rows) or '<tr><td colspan="5">no jobs yet</td></tr>'
    return HTMLResponse(_INDEX.replace("{{ROWS}}", body), headers={"cache-control": "no-cache"})


def _index_row(record: JobRecord, services: Services) -> str:
    base = f"/jobs/{html.escape(record.id)}"
    still = services.viewer_outputs.file(record, PREVIEW_TOP)
    image = f'<img src="{base}/files/{PREVIEW_TOP}" alt="" width="160">' if still else ""
    psnr = latest_metrics(services.jobs.store.events(record.id)).get("psnr")
    psnr_text = f"{psnr:.2f} dB" if isinstance(psnr, int | float) else ""
    return (
        f'<tr><td>{image}</td><td><a href="{base}/view">{html.escape(record.id)}</a></td>'
        f"<td>{html.escape(record.state)}</td><td>{psnr_text}</td>"
        f"<td>{html.escape(record.created_at)}</td></tr>"
    )


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>splatter-node viewer</title>
<link rel="stylesheet" href="/viewer/assets/viewer.css"></head>
<body class="index"><h1>Jobs</h1>
<table><thead><tr><th>preview</th><th>job</th><th>state</th><th>held-out PSNR</th>
<th>created</th></tr></thead><tbody>
{{ROWS}}
</tbody></table></body></html>
"""


@router.get("/jobs/{job_id}/view", response_class=HTMLResponse, summary="The job's viewer page")
async def job_view(
    job_id: str, request: Request, settings: SettingsDep, services: ServicesDep
) -> Response:
    """The interactive page: the splat (live while training), progress, metrics, downloads."""
    if _check(request, settings):
        return redirect_without_token(request, settings)
    record = _job(services, job_id)
    return page_response(f"/jobs/{record.id}/scene", f"job {record.id}")


@router.get("/jobs/{job_id}/scene", summary="What the viewer page loads")
async def job_scene(
    job_id: str, request: Request, settings: SettingsDep, services: ServicesDep
) -> Response:
    """The splat to load, its first camera (the preview orbit's first pose), files, job."""
    by_query = _check(request, settings)
    record = _job(services, job_id)
    events = services.jobs.store.events(record.id)
    document = services.viewer_scenes.document(record, events, f"/jobs/{record.id}")
    response = JSONResponse(document, headers={"cache-control": "no-cache"})
    return grant_cookie(response, settings) if by_query else response


@router.get("/jobs/{job_id}/files/{name}", summary="One of the job's output files")
async def job_file(
    job_id: str, name: str, request: Request, settings: SettingsDep, services: ServicesDep
) -> Response:
    """A file the job produced (Range, ETag); 404 for any other name or once it is gone."""
    by_query = _check(request, settings)
    record = _job(services, job_id)
    path = services.viewer_outputs.file(record, name)
    if path is None:
        raise HTTPException(404, f"job {record.id} has no file {name!r}")
    response = file_response(path, request)
    return grant_cookie(response, settings) if by_query else response


@router.get("/jobs/{job_id}/events", summary="Progress and events as Server-Sent Events")
async def job_events(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    services: ServicesDep,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """`job` (state/progress), `log` and `snapshot` (with ids) and a final `end` event."""
    _check(request, settings)
    record = _job(services, job_id)
    after = parse_last_event_id(request.headers.get("last-event-id"), last_event_id)
    stream = job_event_stream(
        services.jobs.store,
        record.id,
        after,
        f"/jobs/{record.id}",
        is_disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.get("/jobs/{job_id}/render", summary="A JPEG of the splat (no-WebGL2 fallback)")
async def job_render(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    services: ServicesDep,
    yaw: float = 0.0,
    pitch: float | None = None,
    distance: float | None = None,
    width: Annotated[int, Query(ge=16, le=1920)] = 1280,
    height: Annotated[int, Query(ge=16, le=1080)] = 720,
) -> Response:
    """Rendered by the node's rasterizer at the lowest CPU priority, cached per pose. `yaw`
    and `pitch` in degrees around the subject (yaw 0 and the orbit's elevation = the preview's
    first frame), `distance` in world units (default: the first view's)."""
    _check(request, settings)
    record = _job(services, job_id)
    try:
        wanted = render_request(yaw, pitch, distance, width, height)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    framed = services.viewer_scenes.framed(record)
    if framed is None:
        raise HTTPException(404, f"job {record.id} has no splat to render yet")
    return await render_jpeg(framed[1], wanted)
