"""``report.json`` and a self-contained ``report.html`` beside the outputs, plus their pictures.

Files in ``out_dir``: ``report.json``, ``report.html`` (every picture embedded as a ``data:``
URI, so the one file can be mailed or opened anywhere) and ``report/`` holding
``loss_curve.png`` and ``view_<k>.png`` (ground truth | render | error map of held-out view k).

``report.json`` (``version`` 1)::

    {"version": 1, "created": ISO-8601 UTC,
     "inputs":   {"layout", "source", "images", "cameras", "points", and after structure
                  from motion "registered", "sfm_candidates", "registered_fraction", ...},
     "training": {"steps", "training_s", "gaussians", "backend", "resumed_from"},
     "quality":  {"psnr", "ssim", "views", "flat_psnr"},     # held-out means; {} without
     "views":    [{"name", "psnr", "ssim", "image"}],          # "image": path under out_dir
     "loss":     [[step, loss], ...],                          # at most MAX_LOSS_POINTS
     "loss_curve": "report/loss_curve.png",
     "outputs":  {name: file name}}

LPIPS is left out: it needs network weights that no installable package here ships.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_path
from pipeline.render.types import Rasterizer
from pipeline.report.images import comparison_strip, loss_curve, png_bytes
from pipeline.report.metrics import ViewQuality, flat_psnr, view_quality
from pipeline.scene import SceneData
from pipeline.train import TrainConfig, TrainResult

__all__ = ["MAX_LOSS_POINTS", "REPORT_FILES", "ReportInputs", "write_report"]

log = logging.getLogger(__name__)

MAX_LOSS_POINTS = 500
REPORT_FILES = ("report.json", "report.html")


@dataclass
class ReportInputs:
    """What the report describes.

    Attributes:
        scene: the training data (held-out views are rendered).
        trained: the trainer's result.
        config: the recipe trained with.
        rasterizer: the backend (renders the held-out views).
        inputs: input summary (layout, images, points, registered fraction, ...).
        loss: ``(step, loss)`` of the training steps seen by this run.
        outputs: output name → path.
    """

    scene: SceneData
    trained: TrainResult
    config: TrainConfig
    rasterizer: Rasterizer
    inputs: dict[str, Any] = field(default_factory=dict)
    loss: Sequence[tuple[int, float]] = ()
    outputs: dict[str, Path] = field(default_factory=dict)


def write_report(out_dir: Path, data: ReportInputs) -> dict[str, Path]:
    """Write the report into ``out_dir``; returns ``{"report.json": path, "report.html": path}``."""
    pictures = out_dir / "report"
    pictures.mkdir(parents=True, exist_ok=True)
    views = view_quality(data.trained.splats, data.scene, data.rasterizer, data.config)
    loss = _loss(data.loss, out_dir / "report.json")
    report = _report_json(data, views, loss)
    curve = loss_curve([(int(step), float(value)) for step, value in loss])
    images: dict[str, bytes] = {"report/loss_curve.png": png_bytes(curve)}
    for k, view in enumerate(views):
        images[f"report/view_{k}.png"] = png_bytes(comparison_strip(view.truth, view.render))
    for name, content in images.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(content)
    paths = {name: out_dir / name for name in REPORT_FILES}
    with atomic_path(paths["report.json"]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
    with atomic_path(paths["report.html"]) as tmp:
        tmp.write_text(_html(report, images), encoding="utf-8")
    return paths


def _loss(history: Sequence[tuple[int, float]], previous: Path) -> list[list[float]]:
    """At most ``MAX_LOSS_POINTS`` evenly chosen ``[step, loss]`` (the last one included); a run
    that trained nothing new (resumed at its end) keeps the earlier report's curve."""
    points = [[int(s), float(v)] for s, v in history]
    if not points and previous.is_file():
        try:
            return list(json.loads(previous.read_text(encoding="utf-8")).get("loss", []))
        except (OSError, ValueError):
            return []
    if len(points) <= MAX_LOSS_POINTS:
        return points
    stride = len(points) / MAX_LOSS_POINTS
    chosen = [points[int(i * stride)] for i in range(MAX_LOSS_POINTS - 1)]
    return [*chosen, points[-1]]


def _report_json(
    data: ReportInputs, views: list[ViewQuality], loss: list[list[float]]
) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    if views:
        quality = {
            "psnr": sum(v.psnr for v in views) / len(views),
            "ssim": sum(v.ssim for v in views) / len(views),
            "views": len(views),
            "flat_psnr": flat_psnr(data.scene, views),
        }
    return {
        "version": 1,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": data.inputs,
        "training": {
            "steps": data.trained.steps,
            "training_s": round(data.trained.training_s, 3),
            "gaussians": len(data.trained.splats),
            "backend": data.rasterizer.name,
            "resumed_from": data.trained.resumed_from,
            "train_views": len(data.scene.train),
        },
        "quality": quality,
        "views": [
            {"name": v.name, "psnr": v.psnr, "ssim": v.ssim, "image": f"report/view_{k}.png"}
            for k, v in enumerate(views)
        ],
        "loss": loss,
        "loss_curve": "report/loss_curve.png",
        "outputs": {name: Path(path).name for name, path in sorted(data.outputs.items())},
    }


def _html(report: dict[str, Any], images: dict[str, bytes]) -> str:
    def img(name: str, alt: str) -> str:
        encoded = base64.b64encode(images[name]).decode("ascii")
        return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'

    def table(rows: dict[str, Any]) -> str:
        cells = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table>{cells}</table>"

    views = (
        "".join(
            f"<figure>{img(v['image'], v['name'])}<figcaption>{html.escape(v['name'])}: "
            f"PSNR {v['psnr']:.2f} dB, SSIM {v['ssim']:.3f}</figcaption></figure>"
            for v in report["views"]
        )
        or "<p>No held-out views (hold-out was off).</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Splat quality report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}img{{max-width:100%}}
figure{{margin:1em 0}}</style></head><body>
<h1>Splat quality report</h1><p>Created {html.escape(report["created"])}</p>
<h2>Input</h2>{table(report["inputs"])}
<h2>Training</h2>{table(report["training"])}
<h2>Held-out quality</h2>{table(report["quality"]) if report["quality"] else "<p>None.</p>"}
<p>flat_psnr: a flat image of the training images' mean colour, for comparison.</p>
<h2>Loss</h2>{img("report/loss_curve.png", "training loss")}
<h2>Held-out views (ground truth | render | error)</h2>{views}
<h2>Outputs</h2>{table(report["outputs"])}
</body></html>
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
