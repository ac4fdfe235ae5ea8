"""Compressed splats side by side: convert speed, and SOG ours vs PlayCanvas splat-transform.

One 1M-Gaussian scene with SH degree 3 (:func:`bench.render_scene.room_gaussians`: a room's
surfaces, trained-like sizes and opacities), written as a binary PLY (248 MB);
``BENCH_COMPRESS_COUNT`` sets another count for a quick run. Every timing is
the whole command a user runs (``python -m pipeline convert``, ``splat-transform``), wall clock,
including reading the PLY; other work on the machine makes them noisy, so each row notes the
load average. Render quality: the decoded file and the original are rendered by the project's
CPU rasterizer from 5 cameras inside the room (480×270, SH degree 3) and compared by PSNR
(mean over the cameras); our SOG reader decodes both SOGs (it matches splat-transform's own
decoder, see tests/pipeline/formats/test_sog.py).
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.render_scene import look_at_camera, room_gaussians
from bench.table import BenchRow, BenchTable
from pipeline.formats.arrays import SplatArrays
from pipeline.formats.registry import read_splats, write_splats
from pipeline.render.tile_rasterizer import TileRasterizer
from pipeline.render.types import RenderSettings

ROOT = Path(__file__).resolve().parents[1]
COUNT = int(os.environ.get("BENCH_COMPRESS_COUNT", "1000000"))  # smaller for a smoke run
SIZE = f"{COUNT / 1e6:g}M"
# ≥ 1M Gaussians/s for the whole command, on 1M Gaussians (smaller runs: start-up dominates).
TARGET = 1e6 if COUNT >= 1_000_000 else None
# splat-transform's CPU k-means (65,536 SH clusters for 1M Gaussians, a kd-tree per step in 45
# dimensions) runs for hours at 1M; past this limit the bench reports a lower bound and
# compares size and quality on a scene it does finish (SMALL_COUNT Gaussians).
SPLAT_TRANSFORM_TIMEOUT_S = float(os.environ.get("BENCH_SPLAT_TRANSFORM_TIMEOUT", "600"))
SMALL_COUNT = 10_000
# (eye, target) of the 5 quality cameras, in the room of bench.render_scene (y down).
VIEWS = (
    ((0.3, -0.3, -2.5), (0.0, 0.2, 6.0)),
    ((-3.0, -1.5, -2.0), (1.0, 0.5, 5.0)),
    ((3.0, 0.5, -1.0), (-1.5, 0.0, 4.5)),
    ((0.0, -2.0, 1.0), (0.5, 1.0, 5.5)),
    ((-1.0, 0.8, 0.5), (2.5, -0.5, 5.5)),
)


def run(table: BenchTable) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        folder = Path(tmp)
        original = _scene(COUNT)
        ply = folder / "scene.ply"
        write_splats(ply, original)
        _convert_row(table, ply, folder)
        spz, spz_cpu = _timed_convert(ply, folder / "ours.spz")
        quality = _psnr(original, read_splats(folder / "ours.spz"))
        table.add(BenchRow(f"SPZ encode {SIZE} SH3 (ours, whole convert)", spz, "s",
                           note=f"{spz_cpu:.1f} s CPU; {_mb(folder / 'ours.spz')}, render PSNR "
                           f"{quality:.2f} dB; {_load()}"))  # fmt: skip
        finished = _side_by_side(table, original, ply, folder, SIZE)
        if not finished and COUNT > SMALL_COUNT:
            small = _scene(SMALL_COUNT)
            write_splats(folder / "small.ply", small)
            small_size = f"{SMALL_COUNT // 1000}k"
            _side_by_side(table, small, folder / "small.ply", folder / "small", small_size)


def _side_by_side(
    table: BenchTable, original: SplatArrays, ply: Path, folder: Path, size: str
) -> bool:
    """SOG rows, ours vs splat-transform; False when splat-transform did not finish."""
    folder.mkdir(exist_ok=True)
    ours, ours_cpu = _timed_convert(ply, folder / "ours.sog")
    print(f"  ours: {ours:.1f} s wall, {ours_cpu:.1f} s CPU", flush=True)
    theirs = _splat_transform(ply, folder / "theirs.sog")
    _sog_rows(table, original, folder, ours, theirs, size)
    return theirs is not None and theirs > 0


def _scene(count: int) -> SplatArrays:
    """The room scene in stored form (log-scales, logits), float32."""
    g = room_gaussians(count)
    opacity = g.opacities.double().clamp(1e-6, 1 - 1e-6)
    return SplatArrays(
        means=g.means.numpy(),
        quats=g.quats.numpy(),
        log_scales=torch.log(g.scales).numpy(),
        logit_opacities=torch.log(opacity / (1 - opacity)).float().numpy(),
        sh=g.sh.numpy(),
    )


def _run(command: list[str], timeout: float) -> tuple[float, float]:
    """``(wall s, child CPU s)`` of one command; raises if it fails."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=timeout, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _timed_convert(source: Path, target: Path) -> tuple[float, float]:
    """``(wall s, CPU s)`` of ``python -m pipeline convert source target``."""
    return _run([sys.executable, "-m", "pipeline", "convert", str(source), str(target)], 1800)


def _convert_row(table: BenchTable, ply: Path, folder: Path) -> None:
    out = folder / "ours.splat"
    command = [sys.executable, "-m", "pipeline", "convert", str(ply), str(out)]
    runs = [_run(command, 600) for _ in range(3)]
    wall, cpu = min(runs)
    note = f"best of 3 wall, {cpu:.2f} s CPU; {_load()}"
    try:
        import ply2splat  # noqa: F401  (test oracle, dev extra)
    except ImportError:
        note += "; ply2splat not installed"
    else:
        reference = folder / "ply2splat.splat"
        code = f"import ply2splat; ply2splat.convert({str(ply)!r}, {str(reference)!r})"
        ref_wall, ref_cpu = min(_run([sys.executable, "-c", code], 600) for _ in range(3))
        same = out.read_bytes() == reference.read_bytes()
        note += f"; byte-identical to ply2splat: {'yes' if same else 'NO'}"
        name = f"ply2splat 0.6 convert {SIZE} SH3 PLY → .splat (whole process)"
        table.add(BenchRow(name, COUNT / ref_wall, "Gaussians/s",
                           note=f"best of 3 wall, {ref_cpu:.2f} s CPU; {_load()}"))  # fmt: skip
    table.add(BenchRow(f"convert {SIZE} SH3 PLY → .splat (whole process)", COUNT / wall,
                       "Gaussians/s", target=TARGET, lower_is_better=False, note=note))  # fmt: skip
    # On a busy machine the wall clock measures the queue; CPU time is what the command costs.
    table.add(BenchRow(f"convert {SIZE} SH3 PLY → .splat (whole process, per CPU second)",
                       COUNT / cpu, "Gaussians/s", target=TARGET, lower_is_better=False,
                       note="user + system CPU of the same run"))  # fmt: skip


def _splat_transform(ply: Path, out: Path) -> float | None:
    """Wall seconds of splat-transform (CPU) writing ``out``, or ``None`` if unavailable."""
    exe = ROOT / "node_modules" / ".bin" / "splat-transform"
    if not exe.exists() or shutil.which("node") is None:
        print("  splat-transform not installed (make npm-deps): no side-by-side rows")
        return None
    try:
        wall, _ = _run([str(exe), "-q", "-w", "-g", "cpu", str(ply), str(out)],
                       SPLAT_TRANSFORM_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        print(f"  splat-transform ran past {SPLAT_TRANSFORM_TIMEOUT_S:g} s; stopped")
        return -SPLAT_TRANSFORM_TIMEOUT_S
    return wall


def _sog_rows(
    table: BenchTable,
    original: SplatArrays,
    folder: Path,
    ours: float,
    theirs: float | None,
    size: str,
) -> None:
    """Rows for one scene; ``theirs`` < 0: splat-transform stopped after ``-theirs`` s."""
    ours_size = (folder / "ours.sog").stat().st_size
    ours_psnr = _psnr(original, read_splats(folder / "ours.sog"))
    table.add(BenchRow(f"SOG encode {size} SH3 (ours, whole convert)", ours, "s",
                       note=f"{_mb(folder / 'ours.sog')}, render PSNR {ours_psnr:.2f} dB; "
                       f"{_load()}"))  # fmt: skip
    if theirs is None:
        return
    if theirs < 0:
        table.add(
            BenchRow(
                f"SOG encode {size} SH3 (splat-transform 3.10.2, -g cpu)",
                -theirs,
                "s",
                note=f"did NOT finish: stopped at the limit; {_load()}",
            )
        )
        table.add(
            BenchRow(
                f"SOG encode speed-up at {size}, ours vs splat-transform",
                -theirs / ours,
                "×",
                target=2.0,
                lower_is_better=False,
                note="lower bound (splat-transform did not finish)",
            )
        )
        return
    their_size = (folder / "theirs.sog").stat().st_size
    their_psnr = _psnr(original, read_splats(folder / "theirs.sog"))
    table.add(BenchRow(f"SOG encode {size} SH3 (splat-transform 3.10.2, -g cpu)", theirs, "s",
                       note=f"{_mb(folder / 'theirs.sog')}, render PSNR {their_psnr:.2f} dB; "
                       f"one run; {_load()}"))  # fmt: skip
    table.add(BenchRow(f"SOG encode speed-up at {size}, ours vs splat-transform",
                       theirs / ours, "×",
                       target=2.0, lower_is_better=False))  # fmt: skip
    table.add(BenchRow(f"SOG size at {size}, ours / splat-transform", ours_size / their_size,
                       "ratio",
                       target=1.05))  # fmt: skip
    table.add(BenchRow(f"SOG render PSNR at {size}, ours − splat-transform",
                       ours_psnr - their_psnr, "dB",
                       target=-0.2, lower_is_better=False))  # fmt: skip


_REFERENCE: dict[int, list[torch.Tensor]] = {}


def _renders(splats: SplatArrays) -> list[torch.Tensor]:
    gaussians = splats.to_splats().activated()
    rasterizer, settings = TileRasterizer(), RenderSettings(sh_degree=splats.sh_degree)
    with torch.no_grad():
        return [
            rasterizer.render(gaussians, look_at_camera(*view, 480, 270), settings).rgb
            for view in VIEWS
        ]


def _psnr(original: SplatArrays, decoded: SplatArrays) -> float:
    """Mean PSNR (dB) of renders of ``decoded`` against renders of ``original``."""
    key = id(original)
    if key not in _REFERENCE:
        _REFERENCE[key] = _renders(original)
    scores = []
    for reference, image in zip(_REFERENCE[key], _renders(decoded), strict=True):
        mse = float(((image.clamp(0, 1) - reference.clamp(0, 1)) ** 2).mean())
        scores.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    return float(np.mean(scores))


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
