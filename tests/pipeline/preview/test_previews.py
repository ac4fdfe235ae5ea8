"""render_preview: the files it writes, and every failure staying a warning with no leftovers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.mp4 import probe_mp4
from pipeline.preview.camera_path import OrbitConfig
from pipeline.preview.previews import PREVIEW_FILES, PreviewConfig, render_preview
from pipeline.render import get_rasterizer
from pipeline.render.types import BackendName, Camera, Gaussians, RenderOutput, RenderSettings
from pipeline.video import EncodeConfig
from tests.pipeline.export.factories import blob_splats
from tests.support.progress import RecordingProgress
from tests.support.splats import random_splats

TINY = OrbitConfig(fps=1.0, width=32, height=18)  # 5 frames: the dense oracle is slow


class FailingRasterizer:
    """A backend that breaks after ``ok_frames`` successful renders."""

    name: BackendName = "cpu"

    def __init__(self, ok_frames: int = 0, error: BaseException | None = None) -> None:
        self.ok_frames = ok_frames
        self.error = error or RuntimeError("CUDA error: an illegal memory access")
        self.inner = get_rasterizer("cpu")

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def render(
        self, gaussians: Gaussians, camera: Camera, settings: RenderSettings
    ) -> RenderOutput:
        if self.ok_frames <= 0:
            raise self.error
        self.ok_frames -= 1
        return self.inner.render(gaussians, camera, settings)


def _scene() -> tuple[Any, list[float]]:
    """A red cube of small blobs above a green one; +z up decides which is on top."""
    grid = np.stack(np.meshgrid(*[np.linspace(-0.2, 0.2, 3)] * 3), axis=-1).reshape(-1, 3)
    lift = np.array([0.0, 0.0, 0.45])
    centres = np.concatenate([grid + lift, grid - lift])
    colours = [[1.0, 0.0, 0.0]] * len(grid) + [[0.0, 1.0, 0.0]] * len(grid)
    return blob_splats(centres.tolist(), colours, scale=0.06), [0, 0, 1]


def _listing(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_writes_stills_video_and_camera_path(tmp_path: Path) -> None:
    splats, up = _scene()
    progress = RecordingProgress()
    result = render_preview(splats, up, get_rasterizer("cpu"), tmp_path, PreviewConfig(TINY),
                            progress)  # fmt: skip
    assert result.warnings == [] and progress.warnings() == []
    assert _listing(tmp_path) == sorted(PREVIEW_FILES)
    assert set(result.outputs) == set(PREVIEW_FILES) and result.frames_rendered == 5
    info = probe_mp4(tmp_path / "preview.mp4")
    assert (info.width, info.height, info.sample_count) == (32, 18, 5) and info.moov_before_mdat
    path = json.loads((tmp_path / "preview_camera_path.json").read_text())
    assert len(path["camera_path"]) == 5 and path["render_width"] == 32.0
    pcts = [e["pct"] for e in progress.events if e["event"] == "progress"]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0 and len(pcts) == 7


def test_angle_still_shows_the_subject_upright_and_centred(tmp_path: Path) -> None:
    splats, up = _scene()
    config = PreviewConfig(OrbitConfig(fps=1.0, width=64, height=36), video=False)
    render_preview(splats, up, get_rasterizer("cpu"), tmp_path, config)
    image = np.asarray(Image.open(tmp_path / "preview_angle.jpg")).astype(float)
    assert image.shape == (36, 64, 3)
    red = np.argwhere((image[..., 0] > 150) & (image[..., 1] < 100))
    green = np.argwhere((image[..., 1] > 150) & (image[..., 0] < 100))
    assert len(red) and len(green)
    assert red[:, 0].mean() < green[:, 0].mean()  # red (higher along up) is higher in the image
    both = np.concatenate([red, green])
    middle = (both.min(axis=0) + both.max(axis=0)) / 2
    assert abs(middle[0] - 18) < 5 and abs(middle[1] - 32) < 5  # centred
    assert np.ptp(both[:, 0]) > 0.5 * 36  # and big, not a dot
    background = image[0, 0] / 255
    assert np.allclose(background, (0.1490, 0.1647, 0.2157), atol=0.03)  # nerfstudio's viewer bg


def test_stale_previews_are_removed_even_when_everything_fails(tmp_path: Path) -> None:
    for name in (*PREVIEW_FILES, "preview.rendering.mp4", ".preview.mp4.partial"):
        (tmp_path / name).write_bytes(b"old")
    progress = RecordingProgress()
    result = render_preview(random_splats(0), [0, 0, 1], get_rasterizer("cpu"), tmp_path,
                            PreviewConfig(TINY), progress)  # fmt: skip
    assert result.warnings == ["preview skipped: the splat has no Gaussians"]
    assert progress.warnings() == result.warnings
    assert _listing(tmp_path) == []


def test_renderer_failure_is_a_warning_with_no_partial_files(tmp_path: Path) -> None:
    splats, up = _scene()
    progress = RecordingProgress()
    result = render_preview(splats, up, FailingRasterizer(), tmp_path, PreviewConfig(TINY),
                            progress)  # fmt: skip
    assert len(result.warnings) == 3
    assert all("CUDA error: an illegal memory access" in w for w in result.warnings)
    assert result.warnings[-1].startswith("preview video failed: RuntimeError")
    assert _listing(tmp_path) == ["preview_camera_path.json"]


def test_renderer_failing_mid_video_keeps_the_stills_only(tmp_path: Path) -> None:
    splats, up = _scene()
    result = render_preview(splats, up, FailingRasterizer(ok_frames=2 + 3), tmp_path,
                            PreviewConfig(TINY))  # fmt: skip
    assert [w.split(":")[0] for w in result.warnings] == ["preview video failed"]
    assert result.frames_rendered == 3
    assert _listing(tmp_path) == ["preview_angle.jpg", "preview_camera_path.json",
                                  "preview_top.jpg"]  # fmt: skip


def test_missing_ffmpeg_still_writes_the_stills(tmp_path: Path) -> None:
    splats, up = _scene()
    config = PreviewConfig(TINY, encode=EncodeConfig(ffmpeg=str(tmp_path / "no-ffmpeg")))
    result = render_preview(splats, up, get_rasterizer("cpu"), tmp_path / "out", config)
    assert result.warnings == [
        f"preview video failed: EncodeError: ffmpeg not found at {tmp_path / 'no-ffmpeg'}"
    ]
    assert _listing(tmp_path / "out") == ["preview_angle.jpg", "preview_camera_path.json",
                                          "preview_top.jpg"]  # fmt: skip


def test_failing_ffmpeg_reason_is_reported(tmp_path: Path) -> None:
    splats, up = _scene()
    config = PreviewConfig(TINY, encode=EncodeConfig(codec="libnope"), stills=False)
    result = render_preview(splats, up, get_rasterizer("cpu"), tmp_path, config)
    assert len(result.warnings) == 1 and "Encoder not found" in result.warnings[0]
    assert _listing(tmp_path) == ["preview_camera_path.json"]


def test_bad_up_vector_skips_the_preview(tmp_path: Path) -> None:
    splats, _ = _scene()
    result = render_preview(splats, [0, 0, 0], get_rasterizer("cpu"), tmp_path,
                            PreviewConfig(TINY))  # fmt: skip
    assert result.warnings[0].startswith("preview skipped: cannot set up the renderer")
    assert _listing(tmp_path) == []


def test_interrupt_propagates_and_leaves_no_partial_video(tmp_path: Path) -> None:
    splats, up = _scene()
    with pytest.raises(KeyboardInterrupt):
        render_preview(splats, up, FailingRasterizer(2 + 1, KeyboardInterrupt()), tmp_path,
                       PreviewConfig(TINY))  # fmt: skip
    assert "preview.mp4" not in _listing(tmp_path)
    assert ".preview.mp4.partial" not in _listing(tmp_path)
