"""``python -m pipeline view FILE``: the viewer page for one local splat file.

Routes: ``/`` (the page), ``/scene`` (its JSON), ``/files/<FILE's name>`` (the file, Range and
ETag), ``/render`` (fallback JPEG, ``?yaw=&pitch=&distance=&width=&height=``) and
``/viewer/assets/...`` (the page's scripts). Only the one file is served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from numpy.typing import NDArray

from pipeline.render import get_rasterizer
from pipeline.scene_frame import SceneFrame
from pipeline.view.camera import ViewCamera, first_view
from pipeline.view.fallback import FallbackRenderer
from pipeline.view.files import file_response
from pipeline.view.loading import LoadedSplat, load_splat_file
from pipeline.view.routes import (
    asset_response,
    page_response,
    render_jpeg,
    render_request,
    scene_document,
)

__all__ = ["ViewedFile", "create_view_app"]

DEFAULT_UP = np.array([0.0, 0.0, 1.0])


@dataclass
class ViewedFile:
    """One splat file, decoded and framed once.

    Attributes:
        path: the file.
        loaded: its Gaussians and header up vector.
        camera: the first view (the preview orbit's first pose for this file).
    """

    path: Path
    loaded: LoadedSplat
    camera: ViewCamera
    _renderer: FallbackRenderer | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path, up: NDArray[np.float64] | None = None) -> ViewedFile:
        """Reads and frames ``path`` as ``pipeline preview`` would: ``up`` overrides the
        header's scene frame or up vector (default +z)."""
        loaded = load_splat_file(path)
        chosen: NDArray[np.float64] | SceneFrame = next(
            (u for u in (up, loaded.frame, loaded.up) if u is not None), DEFAULT_UP
        )
        return cls(path, loaded, first_view(loaded.splats, chosen))

    def renderer(self) -> FallbackRenderer:
        if self._renderer is None:
            self._renderer = FallbackRenderer(self.loaded.splats, self.camera, get_rasterizer())
        return self._renderer


def create_view_app(viewed: ViewedFile) -> FastAPI:
    """The standalone viewer's app for one file."""
    app = FastAPI(title=f"splat viewer: {viewed.path.name}", docs_url=None, redoc_url=None)
    name = viewed.path.name

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return page_response("/scene", name)

    @app.get("/scene")
    async def scene() -> JSONResponse:
        url = f"/files/{name}"
        splat = {
            "url": url,
            "file_type": viewed.loaded.file_type,
            "count": len(viewed.loaded.splats),
        }
        files = [{"name": name, "url": url, "size": viewed.path.stat().st_size}]
        document = scene_document(
            title=name, splat=splat, camera=viewed.camera, render_url="/render", files=files
        )
        return JSONResponse(document)

    @app.get("/files/{file_name}")
    async def file(file_name: str, request: Request) -> Response:
        if file_name != name or not viewed.path.is_file():
            raise HTTPException(404, f"no file {file_name!r} here")
        return file_response(viewed.path, request)

    @app.get("/render")
    async def render(
        yaw: float = 0.0,
        pitch: float | None = None,
        distance: float | None = None,
        width: Annotated[int, Query(ge=16, le=1920)] = 1280,
        height: Annotated[int, Query(ge=16, le=1080)] = 720,
    ) -> Response:
        try:
            request = render_request(yaw, pitch, distance, width, height)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return await render_jpeg(viewed.renderer(), request)

    @app.get("/viewer/assets/{relative:path}", include_in_schema=False)
    async def asset(relative: str, request: Request) -> Response:
        return asset_response(relative, request)

    return app
