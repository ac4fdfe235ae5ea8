"""``train_capture``: any capture folder → the outputs of ``python -m pipeline run`` in ``OUT``.

Detects the layout (:mod:`pipeline.captures.detect`), reads or reconstructs the poses
(:mod:`pipeline.captures.prepare`), then trains, exports, previews and reports exactly as a job
does (:func:`pipeline.run.train_scene`). A rerun with the same ``OUT`` resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.captures.detect import detect_layout
from pipeline.captures.prepare import prepare_capture
from pipeline.captures.sfm import SfmOptions, check_photo_count, require_pycolmap
from pipeline.dataset import DatasetConfig
from pipeline.render import get_rasterizer
from pipeline.run import RunConfig, RunResult, StageTracker, train_scene
from pipeline.stop import GracefulStop
from pipeline.train import TrainConfig

__all__ = ["train_capture"]


def train_capture(
    data: Path,
    out_dir: Path,
    config: RunConfig,
    tracker: StageTracker,
    sfm_options: SfmOptions | None = None,
    stop: GracefulStop | None = None,
) -> RunResult:
    """Train a splat from ``data`` (any layout) into ``out_dir``.

    Raises:
        PipelineError: bad input (what was found and what is needed), structure from motion
            failed or is not installed, training diverged or export failed.
        StopRequested: ``stop`` fired (SIGTERM; training checkpointed first).
    """
    started = time.perf_counter()
    capture = detect_layout(data)
    if capture.kind in ("images", "videos"):  # say what is wrong before any heavy work
        check_photo_count(capture, sfm_options)
        require_pycolmap()
    if config.trainer != "builtin":
        raise ValueError("train_capture trains with the builtin trainer only")
    rasterizer = get_rasterizer(config.backend)  # an unusable backend fails before the work
    train_config = TrainConfig.for_backend(rasterizer.name, config.steps)
    dataset_config = DatasetConfig(
        max_side=train_config.max_image_side, eval_every=config.eval_every
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_capture(capture, out_dir, dataset_config, tracker, sfm_options)
    result = train_scene(prepared.scene, out_dir, config, tracker, prepared.inputs, stop)
    result.duration_s = time.perf_counter() - started
    return result
