"""A job's scene for the page: what to load, the first camera, the fallback renderer.

Framing a splat reads it once (a 200k-Gaussian splat takes a fraction of a second), so results
are cached per file version (path, mtime, size); a replaced snapshot is framed afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from app.records import JobEvent, JobRecord
from app.viewer.outputs import JobOutputs
from pipeline.contract import LIVE_SPLAT, PREVIEW_ANGLE, PREVIEW_TOP, PREVIEW_VIDEO, SPLAT_FILE
from pipeline.render import get_rasterizer
from pipeline.view.fallback import FallbackRenderer
from pipeline.view.job_folder import FramedSplat, frame_job_folder
from pipeline.view.routes import scene_document

__all__ = ["JobScenes", "job_summary", "latest_metrics"]

_PREVIEWS = {"video": PREVIEW_VIDEO, "top": PREVIEW_TOP, "angle": PREVIEW_ANGLE}
_METRIC_KEYS = ("psnr", "ssim", "views")


def latest_metrics(events: list[JobEvent]) -> dict[str, float]:
    """The last held-out metrics the job logged (``psnr`` dB, ``ssim``, ``views``)."""
    for event in reversed(events):
        if "psnr" in event.event:
            return {k: event.event[k] for k in _METRIC_KEYS if k in event.event}
    return {}


def job_summary(record: JobRecord, events: list[JobEvent]) -> dict[str, Any]:
    """The job as the page shows it (no domain token: the store never holds one)."""
    return {
        "id": record.id,
        "task_id": record.task_id,
        "state": record.state,
        "progress": record.progress,
        "error": record.error,
        "metrics": latest_metrics(events),
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }


class JobScenes:
    """Scene JSON and fallback renderers of jobs, cached per splat file version."""

    def __init__(self, outputs: JobOutputs, cache_size: int = 4) -> None:
        self.outputs = outputs
        self._cache: OrderedDict[tuple[str, int, int], tuple[FramedSplat, FallbackRenderer]] = (
            OrderedDict()
        )
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def framed(self, record: JobRecord) -> tuple[FramedSplat, FallbackRenderer] | None:
        """What the job shows now, framed (``None``: nothing to show yet)."""
        folder = self.outputs.folder(record)
        if folder is None:
            return None
        for name in (SPLAT_FILE, LIVE_SPLAT):
            path = folder / name
            if name == LIVE_SPLAT and not record.active:
                continue
            key = _version(path)
            if key is None:
                continue
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
            return self._frame(folder, key)
        return None

    def _frame(
        self, folder: Path, key: tuple[str, int, int]
    ) -> tuple[FramedSplat, FallbackRenderer] | None:
        framed = frame_job_folder(folder)
        if framed is None:
            return None
        renderer = FallbackRenderer(framed.splats, framed.camera, get_rasterizer("cpu"))
        with self._lock:
            self._cache[key] = (framed, renderer)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return framed, renderer

    def document(self, record: JobRecord, events: list[JobEvent], base: str) -> dict[str, Any]:
        """The scene JSON for ``record``; URLs under ``base`` (``/jobs/<id>``)."""
        framed = self.framed(record)
        splat = None
        if framed is not None:
            fb = framed[0]
            stat = fb.path.stat()
            splat = {
                "url": f"{base}/files/{fb.path.name}",
                "file_type": "splat",
                "count": len(fb.splats),
                "live": fb.live,
                "version": f"{stat.st_mtime_ns}-{stat.st_size}",
            }
        files = [
            {"name": p.name, "url": f"{base}/files/{p.name}", "size": p.stat().st_size}
            for p in self.outputs.files(record)
        ]
        names = {f["name"] for f in files}
        previews = {k: f"{base}/files/{n}" for k, n in _PREVIEWS.items() if n in names}
        message = None if framed else _nothing_yet(record)
        return scene_document(
            title=f"job {record.id}",
            splat=splat,
            camera=framed[0].camera if framed else None,
            render_url=f"{base}/render",
            files=files,
            previews=previews,
            events_url=f"{base}/events",
            job=job_summary(record, events),
            message=message,
        )


def _version(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_mtime_ns, stat.st_size)


def _nothing_yet(record: JobRecord) -> str:
    if record.active:
        return "no splat yet: the first training snapshot appears a few seconds into training"
    return "this job's outputs are not kept (failed, cancelled, or past OUTPUT_RETENTION_HOURS)"
