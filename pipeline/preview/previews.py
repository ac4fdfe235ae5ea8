"""Step 5 of the pipeline: preview stills, orbit video and camera path. Best effort.

:func:`render_preview` never raises for a preview failure: a missing ffmpeg, a renderer error,
an encoder failure or an empty splat becomes a ``warning`` progress event and an entry in
:attr:`PreviewResult.warnings`, and leaves no partial file behind. Stale previews from an
earlier attempt are deleted first, so a retry never republishes them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.atomic import atomic_path, partial_path, remove_quietly
from pipeline.contract import (
    PREVIEW_ANGLE,
    PREVIEW_CAMERA_PATH,
    PREVIEW_FILES,
    PREVIEW_TOP,
    PREVIEW_VIDEO,
    WarningEvent,
)
from pipeline.preview.bounds import BoundsConfig, SubjectCylinder, robust_bounds
from pipeline.preview.camera_path import (
    OrbitConfig,
    PathCamera,
    camera_path_json,
    orbit_cameras,
    still_cameras,
)
from pipeline.preview.render import FrameRenderer, write_jpeg
from pipeline.progress import NullProgress, ProgressSink
from pipeline.render.types import EVAL_BACKGROUND, Rasterizer
from pipeline.scene_frame import SceneFrame
from pipeline.splats import Splats
from pipeline.video import EncodeConfig, VideoEncoder

__all__ = ["PREVIEW_FILES", "PreviewConfig", "PreviewResult", "render_preview", "subject_region"]

logger = logging.getLogger(__name__)

STILL_FILES = {"top": PREVIEW_TOP, "angle": PREVIEW_ANGLE}
# Left behind by the reference's staging; removed too so that nothing stale survives.
_LEGACY_FILES = ("preview.rendering.mp4",)


@dataclass(frozen=True)
class PreviewConfig:
    """What :func:`render_preview` produces.

    Attributes:
        orbit: video length, frame rate, image size, elevation, sweep, field of view
            (also the stills' image size and field of view).
        bounds: how the subject's box is measured.
        encode: ffmpeg settings.
        jpeg_quality: stills' JPEG quality (the reference's 90).
        stills: render ``preview_top.jpg`` and ``preview_angle.jpg``.
        video: render ``preview.mp4``.
        background: RGB in [0, 1] behind the Gaussians (nerfstudio's viewer colour).
        sh_degree: SH degree to render; ``None`` = all stored bands.
    """

    orbit: OrbitConfig = field(default_factory=OrbitConfig)
    bounds: BoundsConfig = field(default_factory=BoundsConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    jpeg_quality: int = 90
    stills: bool = True
    video: bool = True
    background: tuple[float, float, float] = EVAL_BACKGROUND
    sh_degree: int | None = None


@dataclass
class PreviewResult:
    """What :func:`render_preview` wrote, and what went wrong.

    Attributes:
        outputs: file name → path of every preview file written.
        warnings: one line per failure (also sent as ``warning`` events).
        region: the cylinder the orbit and the stills frame (:func:`subject_region`), or
            ``None`` if it could not be measured.
        frames_rendered: video frames rendered.
        render_s: seconds spent rendering (stills and frames).
        total_s: wall-clock seconds of the whole step.
    """

    outputs: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    region: SubjectCylinder | None = None
    frames_rendered: int = 0
    render_s: float = 0.0
    total_s: float = 0.0

    @property
    def video(self) -> Path | None:
        """Path of ``preview.mp4`` if it was written."""
        return self.outputs.get(PREVIEW_VIDEO)


@dataclass
class _Step:
    """Shared state of one preview run."""

    out_dir: Path
    config: PreviewConfig
    progress: ProgressSink
    result: PreviewResult
    units_total: int
    units_done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.result.warnings.append(message)
        self.progress.emit(WarningEvent(stage="preview", message=message))

    def advance(self, **fields: object) -> None:
        self.units_done += 1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.units_done * (self.units_total - self.units_done)
        pct = 100.0 * self.units_done / self.units_total
        self.progress.progress("preview", pct, eta_s=round(eta, 1), **fields)


def render_preview(
    splats: Splats,
    up: ArrayLike | SceneFrame,
    rasterizer: Rasterizer,
    out_dir: Path,
    config: PreviewConfig | None = None,
    progress: ProgressSink | None = None,
) -> PreviewResult:
    """Render the preview stills, the orbit video and its camera-path JSON into ``out_dir``.

    Args:
        splats: the Gaussians, in the frame the previews are framed in (nerfstudio's frame
            in a job: ``ExportResult.nerfstudio_splats``).
        up: the scene frame in that frame (``ExportResult.nerfstudio_frame``): the orbit and
            the stills turn about its up axis and frame its observed region; or just a ``[3]``
            up vector, and the region is a robust box of the Gaussians.
        rasterizer: the backend that renders (the same one as training).
        out_dir: where ``preview_top.jpg``, ``preview_angle.jpg``, ``preview.mp4`` and
            ``preview_camera_path.json`` go.
        config: sizes and settings; defaults as :class:`PreviewConfig`.
        progress: receives ``progress`` and ``warning`` events for stage ``preview``.

    Returns:
        What was written and the warnings; never raises for a preview failure.
    """
    cfg = config or PreviewConfig()
    units = (len(STILL_FILES) if cfg.stills else 0) + (cfg.orbit.frame_count if cfg.video else 0)
    step = _Step(out_dir, cfg, progress or NullProgress(), PreviewResult(), max(units, 1))
    _remove_stale(out_dir)
    _run(step, splats, up, rasterizer)
    step.result.total_s = time.perf_counter() - step.started
    return step.result


def _run(step: _Step, splats: Splats, up: ArrayLike | SceneFrame, rasterizer: Rasterizer) -> None:
    if len(splats) == 0:
        step.warn("preview skipped: the splat has no Gaussians")
        return
    cfg = step.config
    try:
        region = subject_region(splats, up, cfg.bounds)
        step.result.region = region
        orbit = orbit_cameras(region, cfg.orbit)
        stills = still_cameras(region, cfg.orbit)
        renderer = FrameRenderer(splats, rasterizer, cfg.background, cfg.sh_degree)
    except Exception as exc:  # best effort: any failure only costs the preview
        step.warn(f"preview skipped: cannot set up the renderer: {_describe(exc)}")
        return
    _write_camera_path(step, orbit)
    if cfg.stills:
        _render_stills(step, renderer, stills)
    if cfg.video:
        _render_video(step, renderer, orbit)


def subject_region(
    splats: Splats, up: ArrayLike | SceneFrame, config: BoundsConfig | None = None
) -> SubjectCylinder:
    """The region the preview frames: what the orbit and stills circle and fit (also the
    browser viewer's first view, so that it opens on the video's first frame). The scene
    frame's observed region when ``up`` is one, else the robust box of the Gaussians by its
    circumscribed cylinder.

    Raises:
        ValueError: no Gaussian has a finite position, or the up vector is zero.
    """
    if isinstance(up, SceneFrame):
        return SubjectCylinder.from_frame(up)
    gaussians = splats.detach().activated()
    means, opacities = gaussians.means.cpu(), gaussians.opacities.cpu()
    return robust_bounds(means, opacities, up, config).cylinder()


def _remove_stale(out_dir: Path) -> None:
    for name in (*PREVIEW_FILES, *_LEGACY_FILES):
        remove_quietly(out_dir / name)
        remove_quietly(partial_path(out_dir / name))


def _write_camera_path(step: _Step, orbit: list[PathCamera]) -> None:
    path = step.out_dir / PREVIEW_CAMERA_PATH
    try:
        document = camera_path_json(orbit, step.config.orbit.seconds, step.config.orbit.fps)
        with atomic_path(path) as temp:
            temp.write_text(json.dumps(document, indent=1))
        step.result.outputs[PREVIEW_CAMERA_PATH] = path
    except Exception as exc:
        step.warn(f"preview camera path not written: {_describe(exc)}")


def _render_stills(step: _Step, renderer: FrameRenderer, stills: dict[str, PathCamera]) -> None:
    for name, camera in stills.items():
        path = step.out_dir / STILL_FILES[name]
        try:
            image = _timed(step, renderer, camera)
            write_jpeg(path, image, step.config.jpeg_quality)
            step.result.outputs[path.name] = path
        except Exception as exc:
            step.warn(f"preview still {path.name} failed: {_describe(exc)}")
        step.advance(still=name)


def _render_video(step: _Step, renderer: FrameRenderer, orbit: Sequence[PathCamera]) -> None:
    cfg = step.config.orbit
    path = step.out_dir / PREVIEW_VIDEO
    try:
        with VideoEncoder(
            path, cfg.width, cfg.height, cfg.fps, len(orbit), step.config.encode
        ) as video:
            for i, camera in enumerate(orbit):
                video.write(_timed(step, renderer, camera))
                step.result.frames_rendered += 1
                step.advance(frame=i + 1, frames=len(orbit))
            video.finish()
        step.result.outputs[PREVIEW_VIDEO] = path
    except Exception as exc:
        step.warn(f"preview video failed: {_describe(exc)}")


def _timed(step: _Step, renderer: FrameRenderer, camera: PathCamera) -> NDArray[np.uint8]:
    start = time.perf_counter()
    image = renderer.render(camera)
    step.result.render_s += time.perf_counter() - start
    return image


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"
