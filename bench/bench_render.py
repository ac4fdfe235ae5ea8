"""Renderer benchmarks: the CPU tile rasterizer's forward and training-step times.

Scene: :mod:`bench.render_scene` (a room seen from inside, Gaussians on its walls and on
spheres, sized like a trained splat). Torch (and so the numba kernels) use torch's default
thread count. Every figure is the best of several runs: other work on the machine only ever
makes a run slower; each note ends with the 1-minute load average seen just before the runs.
On a busy machine torch's GNU OpenMP threads spin-wait for each other and small torch ops
(projection, SH) can take 10-30x longer; ``OMP_WAIT_POLICY=PASSIVE`` avoids that.
"""

from __future__ import annotations

import os

import torch

from bench.render_scene import room_camera, room_gaussians, scene_stats
from bench.table import BenchRow, BenchTable, best_of
from pipeline.render.tile_rasterizer import TileRasterizer
from pipeline.render.types import Gaussians, RenderSettings

REPEATS = 15


def run(table: BenchTable) -> None:
    for count, target in ((50_000, 0.25), (200_000, 1.0)):
        _forward_row(table, count, target)
    _training_step_row(table, 10_000, 0.15)


def _forward_row(table: BenchTable, count: int, target: float) -> None:
    gaussians, camera = room_gaussians(count), room_camera(1280, 720)
    rasterizer, settings = TileRasterizer(), RenderSettings(sh_degree=3)

    def render() -> None:
        with torch.no_grad():
            rasterizer.render(gaussians, camera, settings)

    load = os.getloadavg()[0]
    seconds = best_of(render, repeats=REPEATS)
    note = f"room scene, SH3, float32, no_grad, {torch.get_num_threads()} threads; "
    note += f"{scene_stats(gaussians, camera).describe()}; {_runs(load)}"
    table.add(BenchRow(f"cpu forward {count // 1000}k @1280x720", seconds, "s/frame", target,
                       note=note))  # fmt: skip


def _runs(load: float) -> str:
    return f"best of {REPEATS}, load {load:.1f}"


def _training_step_row(table: BenchTable, count: int, target: float) -> None:
    start, camera = room_gaussians(count), room_camera(320, 180)
    params = [
        start.means.clone(),
        start.quats.clone(),
        start.scales.log(),
        torch.logit(start.opacities),
        start.sh.clone(),
    ]
    for p in params:
        p.requires_grad_(True)
    target_image = torch.rand(
        camera.height, camera.width, 3, generator=torch.Generator().manual_seed(0)
    )
    rasterizer, settings = TileRasterizer(), RenderSettings(sh_degree=3, absgrad=True)

    def step() -> None:
        means, quats, log_scales, logits, sh = params
        gaussians = Gaussians(means, quats, log_scales.exp(), torch.sigmoid(logits), sh)
        out = rasterizer.render(gaussians, camera, settings)
        out.means2d.retain_grad()
        loss = (out.rgb - target_image).abs().mean()
        loss.backward()  # type: ignore[no-untyped-call]
        for p in params:
            p.grad = None

    load = os.getloadavg()[0]
    seconds = best_of(step, repeats=REPEATS)
    threads = torch.get_num_threads()
    note = f"render + L1 loss + backward to all params, absgrad, SH3, float32, {threads} threads; "
    note += f"{scene_stats(start, camera).describe()}; {_runs(load)}"
    name = f"cpu forward+backward {count // 1000}k @320x180"
    table.add(BenchRow(name, seconds, "s/step", target, note=note))
