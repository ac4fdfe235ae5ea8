"""Live snapshots: what they hold, in which frame, how often, and what the viewer makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.export.outputs import MIN_LOGIT_OPACITY, export_all
from pipeline.export.rotate import COLMAP_TO_OUTPUT
from pipeline.train.params import params_from_splats
from pipeline.train.snapshot import SnapshotWriter
from pipeline.view.job_folder import frame_job_folder
from pipeline.view.loading import load_splat_file
from tests.support.progress import RecordingProgress
from tests.support.scenes import ROOM_UP, room_splats
from tests.support.splats import random_splats


def test_a_snapshot_is_the_visible_gaussians_in_the_output_frame(tmp_path: Path) -> None:
    splats = random_splats(400, sh_degree=2, seed=5)
    splats.means[7, 1] = float("nan")
    progress = RecordingProgress()
    writer = SnapshotWriter(tmp_path, 10.0, ROOM_UP, progress)
    count = writer.write(123, splats)
    visible = (splats.logit_opacities >= MIN_LOGIT_OPACITY) & torch.isfinite(splats.means).all(1)
    assert count == int(visible.sum()) < 400
    loaded = load_splat_file(tmp_path / "live.splat").splats
    want = splats.means[visible].double().numpy() @ COLMAP_TO_OUTPUT.T
    got = loaded.means.double().numpy()
    order = np.lexsort(want.T), np.lexsort(got.T)  # unsorted writes keep the order, but be safe
    np.testing.assert_allclose(got[order[1]], want[order[0]], atol=1e-5)
    meta = json.loads((tmp_path / "live.json").read_text())
    np.testing.assert_allclose(meta["up"], COLMAP_TO_OUTPUT @ ROOM_UP)
    assert (meta["step"], meta["gaussians"]) == (123, count)
    event = progress.events[-1]
    assert event["event"] == "snapshot" and event["file"] == "live.splat"
    assert (event["step"], event["gaussians"]) == (123, count) and event["write_s"] >= 0
    assert writer.written == 1 and writer.seconds > 0
    assert not list(tmp_path.glob(".*partial"))


def test_snapshots_come_at_most_every_interval_the_first_at_once(tmp_path: Path) -> None:
    now = [100.0]
    writer = SnapshotWriter(tmp_path, 10.0, ROOM_UP, clock=lambda: now[0])
    params = params_from_splats(random_splats(50, sh_degree=0), torch.device("cpu"))
    written = []
    for step in range(1, 8):
        written.append(writer.maybe_write(step, params))
        now[0] += 4.0
    assert written == [True, False, False, True, False, False, True]


def test_the_live_view_opens_where_the_final_view_will(tmp_path: Path) -> None:
    splats = room_splats(3000)
    export_all(splats, tmp_path / "final", up=ROOM_UP)
    SnapshotWriter(tmp_path / "live", 10.0, ROOM_UP).write(1, splats)
    final = frame_job_folder(tmp_path / "final")
    live = frame_job_folder(tmp_path / "live")
    assert final is not None and live is not None and live.live and not final.live
    np.testing.assert_allclose(live.camera.c2w, final.camera.c2w, atol=1e-4)
    assert len(live.splats) == len(final.splats)
