"""Output uploads of the splatter runner (protocol §3.6, variants V1 with previews and V2 SOG).

What is uploaded comes from the child's ``done`` event (:class:`pipeline.contract.DoneEvent`):
its ``outputs`` map each file name to the path written, and every path must lie inside the job
folder (``..`` and symbolic links resolved). First, best effort and only when enabled
(``SPLATTER_CONVERT_TO_SOG``), ``splat_rot.sog`` → ``refined_splat_sog<suffix>`` /
``splat_data_sog`` (V2 uploads it before the ``.splat``). Then ``splat_rot.splat`` →
``refined_splat<suffix>`` / ``splat_data`` is required: a missing entry or file, or a failed
upload, fails the job (``expected output missing: <path>``, ``upload <path> as <name>``). Then,
best effort, ``preview_top.jpg``, ``preview_angle.jpg`` and ``preview.mp4`` as
``refined_splat_preview_{top,angle,video}<suffix>`` / ``splat_preview_{top,angle,video}``, and
last the quality report ``report.json`` as ``refined_splat_report<suffix>`` /
``splat_report_json`` (its held-out metrics go into the final progress, ``metrics``). A
best-effort file that is not listed, missing, outside the job folder or fails to upload is
logged (a ``warn`` event for a failure) and skipped.
Every upload is an upsert by name and data type (``TaskStorage.put_domain_artifact``, rel path =
name) of a file path, which the storage streams (chunked upload) instead of reading it whole.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.ports import TaskContextView
from app.runner import progress
from app.runner.cancel import check_cancelled
from app.runner.errors import JobCancelledError, RequiredUploadError, SplatterJobError
from app.runner.naming import (
    PREVIEW_OUTPUTS,
    REPORT_OUTPUT,
    SOG_OUTPUT,
    SPLAT_DATA_TYPE,
    SPLAT_NAME,
    suffixed_artifact_name,
)
from pipeline.contract import SPLAT_FILE, DoneEvent, JobLayout

__all__ = ["UploadSummary", "report_metrics", "upload_outputs"]

log = logging.getLogger(__name__)

_METRIC_KEYS = ("psnr", "ssim", "views", "flat_psnr")


@dataclass
class UploadSummary:
    """Names uploaded and the bytes they weigh."""

    splat: str
    sog: str | None = None
    previews: list[str] = field(default_factory=list)
    video: str | None = None
    bytes_uploaded: int = 0
    report: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


async def upload_outputs(
    ctx: TaskContextView,
    layout: JobLayout,
    done: DoneEvent,
    suffix: str | None,
    sog: bool = True,
) -> UploadSummary:
    """Uploads the files ``done`` lists: the SOG (best effort, when ``sog``), the splat
    (required) and the previews (best effort), reporting 90–95 %.

    Raises:
        SplatterJobError: the splat is not listed, not a file, outside the job folder, or its
            upload failed.
    """
    check_cancelled(ctx, "before upload")
    splat_path = _output_path(layout, done, SPLAT_FILE)
    if splat_path is None or not splat_path.is_file():
        raise SplatterJobError(f"expected output missing: {splat_path or layout.splat_file}")
    name = suffixed_artifact_name(SPLAT_NAME, suffix)
    ctx.reporter.set_progress(progress.upload_starting(name))
    sog_name, sog_bytes = await _upload_sog(ctx, layout, done, suffix) if sog else (None, 0)
    try:
        await ctx.storage.put_domain_artifact(name, name, SPLAT_DATA_TYPE, splat_path)
    except Exception as exc:
        log.warning("splat upload failed", extra={"artifact": name, "error": str(exc)})
        raise RequiredUploadError(f"upload {splat_path} as {name}") from exc
    summary = UploadSummary(
        splat=name, sog=sog_name, bytes_uploaded=splat_path.stat().st_size + sog_bytes
    )
    ctx.reporter.set_progress(progress.splat_uploaded(name, splat_path))
    # protocol §3.7: the reference's event for the required output is "output uploaded"
    ctx.reporter.log_event(
        {"level": "info", "stage": "upload", "message": "output uploaded", "uploaded": name}
    )
    await _upload_previews(ctx, layout, done, suffix, summary)
    await _upload_report(ctx, layout, done, suffix, summary)
    uploaded = (summary.splat, summary.previews, summary.video)
    ctx.reporter.set_progress(progress.upload_completed(*uploaded))
    ctx.reporter.log_event(
        {
            "level": "info",
            "stage": "upload",
            "message": "all outputs uploaded",
            **progress.uploaded_keys(*uploaded),
        }
    )
    return summary


def _output_path(layout: JobLayout, done: DoneEvent, file_name: str) -> Path | None:
    """The path ``done`` lists for ``file_name``; ``None`` when it lists none.

    Raises:
        SplatterJobError: the path lies outside the job folder (``..``, absolute elsewhere,
            or a symbolic link out).
    """
    listed = done.outputs.get(file_name)
    if listed is None:
        return None
    try:
        return layout.inside(listed)
    except ValueError as exc:
        raise SplatterJobError(f"pipeline output {file_name}: {exc}") from None


def _optional_path(layout: JobLayout, done: DoneEvent, file_name: str) -> Path | None:
    """A best-effort file to upload; ``None`` (logged) when not listed, absent or outside."""
    try:
        path = _output_path(layout, done, file_name)
    except SplatterJobError as exc:
        log.warning("optional output outside the job folder; skipping", extra={"error": str(exc)})
        return None
    if path is None or not path.is_file():
        log.warning("optional output not found; skipping upload", extra={"file": file_name})
        return None
    return path


async def _upload_sog(
    ctx: TaskContextView, layout: JobLayout, done: DoneEvent, suffix: str | None
) -> tuple[str | None, int]:
    """The SOG, best effort: ``(name, bytes)`` when uploaded, ``(None, 0)`` otherwise."""
    file_name, data_type, base = SOG_OUTPUT
    check_cancelled(ctx, "before upload")
    path, name = _optional_path(layout, done, file_name), suffixed_artifact_name(base, suffix)
    if path is None or not await _upload_one(ctx, path, name, data_type):
        return None, 0
    ctx.reporter.log_event(
        {"level": "info", "stage": "upload", "message": "SOG compressed splat uploaded",
         "uploaded": name}
    )  # fmt: skip
    return name, path.stat().st_size


async def _upload_previews(
    ctx: TaskContextView,
    layout: JobLayout,
    done: DoneEvent,
    suffix: str | None,
    summary: UploadSummary,
) -> None:
    for file_name, data_type, base in PREVIEW_OUTPUTS:
        check_cancelled(ctx, "before upload")
        path = _optional_path(layout, done, file_name)
        name = suffixed_artifact_name(base, suffix)
        if path is None or not await _upload_one(ctx, path, name, data_type):
            continue
        summary.bytes_uploaded += path.stat().st_size
        if data_type == "splat_preview_video":
            summary.video = name
        else:
            summary.previews.append(name)


async def _upload_report(
    ctx: TaskContextView,
    layout: JobLayout,
    done: DoneEvent,
    suffix: str | None,
    summary: UploadSummary,
) -> None:
    file_name, data_type, base = REPORT_OUTPUT
    check_cancelled(ctx, "before upload")
    path = _optional_path(layout, done, file_name)
    if path is None:
        return
    name = suffixed_artifact_name(base, suffix)
    if await _upload_one(ctx, path, name, data_type):
        summary.report = name
        summary.bytes_uploaded += path.stat().st_size
    summary.metrics = report_metrics(path)


def report_metrics(path: Path) -> dict[str, float]:
    """The held-out metrics of a ``report.json`` (``psnr``, ``ssim``, ``views``, ``flat_psnr``,
    ``gaussians``); empty when the file is missing or unreadable."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    quality = _section(report, "quality")
    found = {k: quality.get(k) for k in _METRIC_KEYS}
    found["gaussians"] = _section(report, "training").get("gaussians")
    return {k: v for k, v in found.items() if isinstance(v, int | float)}


def _section(report: object, key: str) -> dict[str, object]:
    section = report.get(key) if isinstance(report, dict) else None
    return section if isinstance(section, dict) else {}


async def _upload_one(ctx: TaskContextView, path: Path, name: str, data_type: str) -> bool:
    """One best-effort upload; False when it failed."""
    try:
        await ctx.storage.put_domain_artifact(name, name, data_type, path)
    except JobCancelledError:
        raise
    except Exception as exc:
        log.warning(
            "optional upload failed; continuing",
            extra={"artifact": name, "data_type": data_type, "error": str(exc)},
        )
        ctx.reporter.log_event(
            {
                "level": "warn",
                "stage": "upload",
                "message": f"{_kind(data_type)} upload failed: {exc}",
                "artifact": name,
            }
        )
        return False
    log.info("optional output uploaded", extra={"artifact": name, "data_type": data_type})
    return True


def _kind(data_type: str) -> str:
    """``preview``, ``SOG`` or ``report``: how the warning event names a failed best-effort
    upload."""
    return {SOG_OUTPUT[1]: "SOG", REPORT_OUTPUT[1]: "report"}.get(data_type, "preview")
