"""Trainer: speed and quality of the CPU profile on the synthetic job, and one training step.

1. The synthetic job of :mod:`pipeline.synthetic` (default: 40 views of 160×120, 2,400
   ground-truth Gaussians, 1,500 SfM points) goes through frame extraction and the dataset step
   (every 8th view held out), then trains with the CPU profile ``TrainConfig.cpu()`` (1,000
   steps): steps/s and the held-out PSNR at the end (the initial Gaussians' PSNR in the note).
2. One full training step — render, loss, backward, Adam, densification statistics — with
   10,000 Gaussians at 320×180 and SH degree 3 (the rasterizer's ≤ 0.15 s target is for this
   size); the median over 11 steps after 4 warm-up steps.

Both use ``get_rasterizer("cpu")``, the tile rasterizer.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.table import BenchRow, BenchTable
from pipeline.contract import Stage
from pipeline.dataset import DatasetConfig, load_scene
from pipeline.frames import extract_frames
from pipeline.progress import NullProgress
from pipeline.render import Rasterizer, get_rasterizer
from pipeline.render.types import Camera
from pipeline.scene import SceneData, View
from pipeline.scene_frame import estimate_scene_frame
from pipeline.synthetic import SyntheticConfig, make_synthetic_job
from pipeline.synthetic.scene import build_room
from pipeline.train import TrainConfig, train
from pipeline.train.evaluate import evaluate
from pipeline.train.initialize import initial_splats
from pipeline.train.views import ViewSet, auto_downscale

STEP_GAUSSIANS, STEP_WIDTH, STEP_HEIGHT = 10_000, 320, 180


def run(table: BenchTable) -> None:
    rasterizer = get_rasterizer("cpu")
    _bench_synthetic_training(table, rasterizer)
    _bench_training_step(table, rasterizer)


def _bench_synthetic_training(table: BenchTable, rasterizer: Rasterizer) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        make_synthetic_job(root, SyntheticConfig())
        extract_frames(root)
        scene = load_scene(root, DatasetConfig(eval_every=8))
    config = TrainConfig.cpu()
    start_psnr = _initial_psnr(scene, config, rasterizer)
    result = train(scene, config, rasterizer)
    size = _training_size(scene, config)
    note = (
        f"synthetic job, {len(scene.train)} train / {len(scene.eval)} held-out views at {size}, "
        f"{len(scene.points)} SfM points → {len(result.splats)} Gaussians; "
        f"{rasterizer.name} rasterizer"
    )
    steps = config.steps
    table.add(BenchRow(f"train cpu profile, {steps} steps", steps / result.training_s,
                       "steps/s", lower_is_better=False, note=note))  # fmt: skip
    table.add(BenchRow(f"held-out PSNR after {steps} steps", result.metrics["psnr"], "dB",
                       lower_is_better=False,
                       note=f"{start_psnr:.2f} dB at the start; SSIM "
                            f"{result.metrics['ssim']:.3f}"))  # fmt: skip


def _downscale(scene: SceneData, config: TrainConfig) -> int:
    """The factor the trainer shrinks this scene's images by."""
    return config.downscale or auto_downscale(scene.train + scene.eval, config.max_image_side)


def _training_size(scene: SceneData, config: TrainConfig) -> str:
    camera = ViewSet(scene.train[:1], _downscale(scene, config), torch.device("cpu")).cameras[0]
    return f"{camera.width}x{camera.height}"


def _initial_psnr(scene: SceneData, config: TrainConfig, rasterizer: Rasterizer) -> float:
    """Held-out PSNR of the Gaussians training starts from."""
    start = initial_splats(scene, config, torch.Generator().manual_seed(config.seed))
    views = ViewSet(scene.eval, _downscale(scene, config), rasterizer.device)
    metrics = evaluate(start.activated().to(rasterizer.device), views, rasterizer, 0)
    return math.nan if metrics is None else metrics.psnr


class _StepClock(NullProgress):
    """Records when each training step finished."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def progress(self, stage: Stage, pct: float, **fields: Any) -> None:
        self.times.append(time.perf_counter())


def _bench_training_step(table: BenchTable, rasterizer: Rasterizer) -> None:
    name = f"full train step {STEP_GAUSSIANS // 1000}k @{STEP_WIDTH}x{STEP_HEIGHT} (+Adam, densify)"
    scene = _room_scene()
    config = TrainConfig.cpu(steps=15, num_downscales=0, sh_degree_interval=1, downscale=1)
    config = replace(config, densify=replace(config.densify, refine_start_iter=15))
    clock = _StepClock()
    train(scene, config, rasterizer, clock)
    steps = [b - a for a, b in zip(clock.times[3:], clock.times[4:], strict=False)]
    table.add(BenchRow(name, statistics.median(steps), "s/step", target=0.15,
                       note="render + loss + backward + Adam + densify stats, SH 3, "
                            f"median of {len(steps)}"))  # fmt: skip


def _room_scene() -> SceneData:
    """10k room Gaussian centres as SfM points, 4 views at 320×180 of flat grey images."""
    room = build_room(STEP_GAUSSIANS, torch.Generator().manual_seed(0))
    colors = (room.rgb * 255).round().to(torch.uint8)
    image = torch.full((STEP_HEIGHT, STEP_WIDTH, 3), 128, dtype=torch.uint8)
    views = [View(f"v{i}.jpg", _orbit_camera(i * math.pi / 2), image) for i in range(4)]
    poses = torch.stack([v.camera.world_to_camera for v in views]).double().numpy()
    frame = estimate_scene_frame(poses, room.gaussians.means.double().numpy())
    return SceneData(views, [], room.gaussians.means, colors, frame)


def _orbit_camera(angle: float, radius: float = 3.0, height: float = 1.0) -> Camera:
    """A camera on a circle around the room's vertical axis (y down), looking at its centre."""
    eye = torch.tensor([radius * math.cos(angle), -height, radius * math.sin(angle)])
    forward = -eye / eye.norm()
    right = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    rotation = torch.stack([right, down, forward])
    w2c = torch.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rotation, -rotation @ eye
    focal = 0.5 * STEP_WIDTH / math.tan(math.radians(65.0) / 2)
    K = torch.tensor([[focal, 0, STEP_WIDTH / 2], [0, focal, STEP_HEIGHT / 2], [0, 0, 1.0]])
    return Camera(w2c, K, STEP_WIDTH, STEP_HEIGHT)
