"""Export and preview speed: ``.splat`` conversion, export_all, video encode, preview total.

Scenes are synthetic (seeded): Gaussians uniform in a 2-unit cube, log-scales in [-4, -2],
SH degree 3 with random coefficients, logit opacities ~ N(0, 2). Timings are the best of
several runs unless a row says otherwise; other work on the machine makes them noisy.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from bench.table import BenchRow, BenchTable, best_of
from pipeline.export.outputs import export_all
from pipeline.export.ply import read_ply, write_ply
from pipeline.export.splat_format import encode_splat, write_splat
from pipeline.preview.camera_path import OrbitConfig
from pipeline.preview.previews import PreviewConfig, render_preview
from pipeline.render import get_rasterizer
from pipeline.splats import Splats
from pipeline.video import VideoEncoder

MILLION = 1_000_000


def synthetic_splats(n: int, seed: int = 0) -> Splats:
    """``n`` Gaussians as described in the module docstring (float32)."""
    g = torch.Generator().manual_seed(seed)
    return Splats(
        means=(torch.rand(n, 3, generator=g) - 0.5) * 2.0,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.rand(n, 3, generator=g) * 2.0 - 4.0,
        logit_opacities=torch.randn(n, generator=g) * 2.0,
        sh=torch.randn(n, 16, 3, generator=g) * 0.3,
    )


def synthetic_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Smooth gradients with a moving disc: stands in for rendered frames in the encode row."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, np.full_like(xx, 80)], axis=-1)
    for i in range(count):
        angle = 2 * np.pi * i / count
        cx, cy = width / 2 + width / 4 * np.cos(angle), height / 2 + height / 4 * np.sin(angle)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < (height / 6) ** 2
        frame = base.copy()
        frame[disc] = (230, 120, 40)
        yield frame.astype(np.uint8)


def bench_splat_conversion(table: BenchTable, folder: Path) -> None:
    splats = synthetic_splats(MILLION)
    seconds = best_of(lambda: encode_splat(splats), repeats=20)
    table.add(BenchRow(".splat encode 1M Gaussians (in memory, sorted)", MILLION / seconds,
                       "Gaussians/s", target=5e6, lower_is_better=False,
                       note="best of 20; what export_all does"))  # fmt: skip
    ply = folder / "one_million.ply"
    write_ply(ply, splats)

    def file_to_file() -> None:
        write_splat(folder / "out.splat", read_ply(ply, dc_only=True).splats)

    seconds = best_of(file_to_file, repeats=3)
    table.add(BenchRow(".splat convert 1M Gaussians PLY→file (pipeline convert)",
                       MILLION / seconds, "Gaussians/s", lower_is_better=False,
                       note="best of 3; read 248 MB PLY + encode + write"))  # fmt: skip
    try:
        import ply2splat  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    seconds = best_of(lambda: ply2splat.convert(str(ply), str(folder / "ref.splat")), repeats=3)
    table.add(BenchRow(".splat convert 1M Gaussians PLY→file (ply2splat 0.6, Rust)",
                       MILLION / seconds, "Gaussians/s", lower_is_better=False,
                       note="best of 3; the reference's converter, for comparison"))  # fmt: skip


def bench_export_all(table: BenchTable, folder: Path) -> None:
    splats = synthetic_splats(MILLION, seed=1)
    seconds = best_of(lambda: export_all(splats, folder / "export", up=[0, -1, 0]), repeats=2)
    table.add(BenchRow("export_all 1M Gaussians (splat.ply, splat_rot.ply, .splat)", seconds,
                       "s", note="best of 2; SH degree 3 rotated twice"))  # fmt: skip


def bench_encode(table: BenchTable, folder: Path) -> None:
    config = OrbitConfig()
    frames = list(synthetic_frames(config.frame_count, config.width, config.height))

    def encode() -> None:
        with VideoEncoder(folder / "preview.mp4", config.width, config.height, config.fps,
                          config.frame_count) as video:  # fmt: skip
            for frame in frames:
                video.write(frame)
            video.finish()

    seconds = best_of(encode, repeats=3)
    table.add(BenchRow("preview encode only, 150 frames 1280x720 (libx264 CRF 23)", seconds,
                       "s", note="best of 3; synthetic frames piped to ffmpeg"))  # fmt: skip


def bench_preview_total(table: BenchTable, folder: Path) -> None:
    rasterizer = get_rasterizer("cpu")
    n, config, target = 50_000, OrbitConfig(), 45.0
    name = "preview total 150 frames 1280x720, 50k Gaussians, cpu backend"
    note = "single run; render + encode, stills included"
    start = time.perf_counter()
    result = render_preview(synthetic_splats(n, seed=2), [0, 0, 1], rasterizer,
                            folder / "preview", PreviewConfig(orbit=config))  # fmt: skip
    seconds = time.perf_counter() - start
    if result.warnings:
        note += f"; WARNINGS: {'; '.join(result.warnings)}"
    table.add(BenchRow(name, seconds, "s", target=target, note=note))
    table.add(BenchRow("  of which rendering (stills + frames)", result.render_s, "s"))


def run(table: BenchTable) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
        folder = Path(tmp)
        bench_splat_conversion(table, folder)
        bench_export_all(table, folder)
        bench_encode(table, folder)
        bench_preview_total(table, folder)
