"""Fallback JPEGs: the pipeline's render of the asked pose, bounded, cached."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.preview.render import FrameRenderer
from pipeline.render import get_rasterizer
from pipeline.view.camera import first_view
from pipeline.view.fallback import FallbackRenderer, RenderRequest
from tests.support.images import psnr
from tests.support.scenes import room_splats


def test_the_jpeg_is_the_render_of_the_asked_pose() -> None:
    splats = room_splats(3000)
    view = first_view(splats, [0.0, -1.0, 0.0])
    rasterizer = get_rasterizer("cpu")
    fallback = FallbackRenderer(splats, view, rasterizer)
    request = RenderRequest(yaw_deg=40.0, pitch_deg=25.0, distance=view.distance * 0.8,
                            width=160, height=96)  # fmt: skip
    data = fallback.jpeg(request)
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    c2w = view.pose(40.0, 25.0, view.distance * 0.8)
    want = FrameRenderer(splats, rasterizer).render(view.path_camera(c2w, 160, 96))
    assert image.shape == (96, 160, 3)
    assert psnr(image, want) > 30.0
    first = FrameRenderer(splats, rasterizer).render(view.path_camera(view.c2w, 160, 96))
    assert psnr(image, first) < 20.0  # a different pose shows something else
    assert fallback.jpeg(request) is data  # cached


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RenderRequest(width=4000, height=3000), "at most"),
        (RenderRequest(width=8, height=100), "at least 16"),
        (RenderRequest(pitch_deg=95.0), "pitch"),
        (RenderRequest(distance=-1.0), "distance"),
        (RenderRequest(yaw_deg=float("nan")), "finite"),
    ],
)
def test_out_of_range_requests_are_refused(request_: RenderRequest, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_.check()
