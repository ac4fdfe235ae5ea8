"""The fallback view: a JPEG of a splat from one pose, for clients without WebGL2.

Rendered by the project's own rasterizer (:class:`~pipeline.preview.render.FrameRenderer`,
the preview's renderer and background), bounded in size, and cached by pose: dragging back to a
pose already seen costs nothing.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image

from pipeline.preview.render import FrameRenderer
from pipeline.render.types import Rasterizer
from pipeline.splats import Splats
from pipeline.view.camera import ViewCamera

__all__ = ["MAX_RENDER_PIXELS", "FallbackRenderer", "RenderRequest"]

MAX_RENDER_PIXELS = 1920 * 1080
MIN_SIDE = 16


@dataclass(frozen=True)
class RenderRequest:
    """One fallback frame: a pose around the subject and an image size.

    Attributes:
        yaw_deg: about the scene's up, from the box's first horizontal axis, degrees.
        pitch_deg: above the horizontal plane, degrees, within ±89.
        distance: from the orbit centre, world units (> 0); ``None``: the first view's.
        width, height: pixels, 16.., at most :data:`MAX_RENDER_PIXELS` in all.
        quality: JPEG quality 1..95.
    """

    yaw_deg: float = 0.0
    pitch_deg: float | None = None
    distance: float | None = None
    width: int = 1280
    height: int = 720
    quality: int = 85

    def check(self) -> None:
        """Raises ``ValueError`` naming the first parameter out of range."""
        numbers = (self.yaw_deg, self.pitch_deg or 0.0, self.distance or 1.0)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("yaw, pitch and distance must be finite numbers")
        if self.pitch_deg is not None and abs(self.pitch_deg) > 89.0:
            raise ValueError(f"pitch must be within ±89 degrees, got {self.pitch_deg}")
        if self.distance is not None and not self.distance > 0:
            raise ValueError(f"distance must be positive, got {self.distance}")
        if min(self.width, self.height) < MIN_SIDE:
            raise ValueError(f"width and height must be at least {MIN_SIDE} pixels")
        if self.width * self.height > MAX_RENDER_PIXELS:
            raise ValueError(f"at most {MAX_RENDER_PIXELS} pixels (1920x1080) per frame")
        if not 1 <= self.quality <= 95:
            raise ValueError(f"quality must be in 1..95, got {self.quality}")


class FallbackRenderer:
    """Renders JPEGs of one splat around its :class:`ViewCamera`, caching the last frames.

    Args:
        splats: the Gaussians, in the camera's frame.
        camera: the rig (first view, orbit centre, axes).
        rasterizer: the backend.
        cache_size: frames kept.
    """

    def __init__(
        self, splats: Splats, camera: ViewCamera, rasterizer: Rasterizer, cache_size: int = 64
    ) -> None:
        self.camera = camera
        self._renderer = FrameRenderer(splats, rasterizer)
        self._cache: OrderedDict[RenderRequest, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def jpeg(self, request: RenderRequest) -> bytes:
        """The JPEG bytes for ``request`` (``ValueError`` when a parameter is out of range)."""
        request.check()
        with self._lock:
            cached = self._cache.get(request)
            if cached is not None:
                self._cache.move_to_end(request)
                return cached
        data = self._render(request)
        with self._lock:
            self._cache[request] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def _render(self, request: RenderRequest) -> bytes:
        rig = self.camera
        pitch = rig.pitch_deg if request.pitch_deg is None else request.pitch_deg
        distance = rig.distance if request.distance is None else request.distance
        c2w = rig.pose(request.yaw_deg, pitch, distance)
        image = self._renderer.render(rig.path_camera(c2w, request.width, request.height))
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=request.quality)
        return buffer.getvalue()
