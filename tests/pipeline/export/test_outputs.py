"""export_all: the three files, their frames, filters and header up vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.export.outputs import ExportConfig, export_all, filter_for_export
from pipeline.export.ply import read_ply
from pipeline.export.rotate import (
    COLMAP_TO_NERFSTUDIO,
    COLMAP_TO_OUTPUT,
    axis_rotation,
    quat_to_matrix,
)
from pipeline.export.splat_format import encode_splat
from pipeline.render.sh import eval_sh
from pipeline.scene_frame import SceneFrame
from tests.pipeline.export.factories import assert_splats_equal, up_of
from tests.support.splats import random_splats

Y_DOWN = [0.0, -1.0, 0.0]  # COLMAP/OpenCV worlds usually have gravity along +y


def test_writes_three_files_in_the_reference_frames(tmp_path: Path) -> None:
    splats = random_splats(60, seed=1)
    splats.logit_opacities.clamp_(min=-5.0)  # nothing filtered here
    result = export_all(splats, tmp_path, up=Y_DOWN)
    assert [p.name for p in (result.splat_ply, result.rotated_ply, result.rotated_splat)] == [
        "splat.ply", "splat_rot.ply", "splat_rot.splat",
    ]  # fmt: skip
    assert result.count == 60
    x, y, z = splats.means.unbind(-1)
    ns = read_ply(result.splat_ply)
    assert torch.equal(ns.splats.means, torch.stack([x, z, -y], dim=-1))  # applied_transform
    rot = read_ply(result.rotated_ply)
    assert torch.equal(rot.splats.means, torch.stack([y, -x, z], dim=-1))  # Rz(-90°)
    expected = COLMAP_TO_OUTPUT @ quat_to_matrix(splats.quats.double().numpy())
    assert np.allclose(quat_to_matrix(rot.splats.quats.double().numpy()), expected, atol=1e-6)
    assert torch.equal(rot.splats.log_scales, splats.log_scales)
    assert torch.equal(rot.splats.logit_opacities, splats.logit_opacities)
    assert_splats_equal(result.nerfstudio_splats, ns.splats)


def test_header_records_up_in_each_frame(tmp_path: Path) -> None:
    result = export_all(random_splats(5), tmp_path, up=Y_DOWN)
    ns, rot = read_ply(result.splat_ply), read_ply(result.rotated_ply)
    # -y in COLMAP is +z in nerfstudio's frame (what the reference's previews assume) and -x
    # in the output frame, Rz(-90°) of COLMAP.
    assert np.allclose(up_of(ns), [0.0, 0.0, 1.0]) and np.allclose(result.nerfstudio_up, up_of(ns))
    assert "Vertical Axis: z" in ns.comments
    assert np.allclose(up_of(rot), [-1.0, 0.0, 0.0])
    assert "Vertical Axis: -x" in rot.comments
    tilted = export_all(random_splats(5), tmp_path / "t", up=[1.0, -1.0, 0.0])
    assert np.allclose(
        up_of(read_ply(tilted.rotated_ply)), COLMAP_TO_OUTPUT @ [2**-0.5, -(2**-0.5), 0]
    )


def test_header_records_the_scene_frame_in_each_files_frame(tmp_path: Path) -> None:
    frame = SceneFrame(np.array([0.1, -1.0, 0.2]), np.array([1.0, 2.0, 3.0]), 0.7, 0.3, "plane")
    result = export_all(random_splats(5), tmp_path, up=frame)
    ns, rot = read_ply(result.splat_ply), read_ply(result.rotated_ply)
    assert ns.frame is not None and rot.frame is not None
    for ply, rotation in ((ns, COLMAP_TO_NERFSTUDIO), (rot, COLMAP_TO_OUTPUT)):
        assert ply.frame is not None
        np.testing.assert_allclose(ply.frame.up, rotation @ frame.up, atol=1e-8)
        np.testing.assert_allclose(ply.frame.center, rotation @ frame.center, atol=1e-8)
        assert (ply.frame.radius, ply.frame.half_height, ply.frame.rule) == (0.7, 0.3, "plane")
        np.testing.assert_allclose(up_of(ply), ply.frame.up, atol=1e-8)  # one up axis
    assert "Up Rule: plane" in ns.comments and "Radius: 0.7" in ns.comments
    assert result.nerfstudio_frame is not None
    np.testing.assert_allclose(result.nerfstudio_frame.up, result.nerfstudio_up)
    assert read_ply(export_all(random_splats(5), tmp_path / "u", up=Y_DOWN).splat_ply).frame is None


def test_view_dependent_colour_survives_both_rotations(tmp_path: Path) -> None:
    splats = random_splats(30, seed=2)
    splats.logit_opacities.fill_(1.0)
    result = export_all(splats, tmp_path, up=Y_DOWN)
    rot = read_ply(result.rotated_ply).splats
    dirs = torch.randn(30, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = eval_sh(3, splats.sh.double(), dirs)
    after = eval_sh(3, rot.sh.double(), dirs @ torch.as_tensor(COLMAP_TO_OUTPUT).T)
    assert torch.allclose(before, after, atol=1e-5)


def test_reference_mode_leaves_sh_unrotated(tmp_path: Path) -> None:
    result = export_all(random_splats(10), tmp_path, Y_DOWN, ExportConfig(rotate_sh=False))
    assert torch.equal(read_ply(result.rotated_ply).splats.sh, read_ply(result.splat_ply).splats.sh)


def test_splat_file_encodes_the_rotated_ply(tmp_path: Path) -> None:
    result = export_all(random_splats(200, seed=4), tmp_path, up=Y_DOWN)
    expected = encode_splat(read_ply(result.rotated_ply).splats).tobytes()
    assert result.rotated_splat.read_bytes() == expected


def test_non_finite_and_transparent_gaussians_are_dropped(tmp_path: Path) -> None:
    splats = random_splats(10, seed=5)
    splats.logit_opacities[:] = 0.0
    splats.means[0, 1] = float("nan")
    splats.sh[1, 4, 0] = float("inf")
    splats.logit_opacities[2] = -5.6  # below logit(1/255) = -5.5373
    splats.logit_opacities[3] = -5.5  # above: kept
    result = export_all(splats, tmp_path, up=Y_DOWN)
    assert (result.count, result.dropped_non_finite, result.dropped_transparent) == (7, 2, 1)
    assert len(read_ply(result.splat_ply).splats) == 7
    assert result.rotated_splat.stat().st_size == 7 * 32
    kept, *_ = filter_for_export(splats, min_logit_opacity=None)
    assert len(kept) == 8


def test_accepts_gradients_other_dtypes_and_rejects_a_zero_up(tmp_path: Path) -> None:
    splats = random_splats(4, dtype=torch.float64)
    for t in splats.tensors():
        t.requires_grad_(True)
    assert export_all(splats, tmp_path, up=[0, 0, 1]).count == 4
    with pytest.raises(ValueError, match="finite, non-zero"):
        export_all(splats, tmp_path, up=[0, 0, 0])


def test_output_frame_is_rz_minus_90_of_colmap() -> None:
    assert np.array_equal(COLMAP_TO_OUTPUT, axis_rotation("z", -90.0))


def test_writes_the_rotated_sog_best_effort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.formats.arrays import SplatArrays
    from pipeline.formats.sog import read_sog

    splats = random_splats(300, seed=11)
    splats.logit_opacities.clamp_(min=-5.0)
    result = export_all(splats, tmp_path, up=Y_DOWN)
    assert result.rotated_sog == tmp_path / "splat_rot.sog" and result.warnings == []
    assert "splat_rot.sog" in result.outputs()
    # The SOG holds the output-frame Gaussians of splat_rot.ply (positions within 16 bits).
    rot = SplatArrays.from_splats(read_ply(result.rotated_ply).splats)
    sog = read_sog(tmp_path / "splat_rot.sog")
    assert sog.sh_degree == 3 and len(sog) == 300
    a, b = np.sort(rot.means, axis=0), np.sort(sog.means, axis=0)
    assert np.abs(a - b).max() < 1e-3

    none = export_all(splats, tmp_path / "off", up=Y_DOWN, config=ExportConfig(rotated_sog=None))
    assert none.rotated_sog is None and not (tmp_path / "off" / "splat_rot.sog").exists()

    def broken(*_: object) -> int:
        raise RuntimeError("no encoder")

    monkeypatch.setattr("pipeline.formats.sog.write_sog", broken)
    failed = export_all(splats, tmp_path / "fail", up=Y_DOWN)
    assert failed.rotated_sog is None and (tmp_path / "fail" / "splat_rot.splat").is_file()
    assert failed.warnings == ["SOG compression failed; .splat file is still available: no encoder"]
