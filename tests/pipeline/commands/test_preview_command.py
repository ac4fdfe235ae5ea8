"""``python -m pipeline preview``: previews for any PLY, options, up axis, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.commands.preview import parse_up
from pipeline.export.ply import write_ply
from pipeline.scene_frame import SceneFrame
from tests.pipeline.export.factories import inria_columns, write_custom_ply
from tests.support.splats import random_splats

TINY = ["--size", "32x18", "--fps", "1"]


def test_previews_our_ply_around_its_recorded_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = np.array([0.0, -1.0, 0.0])
    write_ply(tmp_path / "splat.ply", random_splats(20, seed=1), up=up)
    out = tmp_path / "previews"
    assert main(["preview", str(tmp_path / "splat.ply"), "--out", str(out), *TINY]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "preview.mp4", "preview_angle.jpg", "preview_camera_path.json", "preview_top.jpg",
    ]  # fmt: skip
    # stdout is not a terminal here: JSON lines, the last one listing the files written.
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "done"
    assert events[-1]["outputs"]["preview.mp4"] == str(out / "preview.mp4")
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["stage"] == "preview" and progress[-1]["pct"] == 100.0
    # Every camera looks down at 35° with respect to the file's up, (0, -1, 0).
    path = json.loads((out / "preview_camera_path.json").read_text())
    assert len(path["camera_path"]) == 5
    assert np.allclose(_elevations_about_target(path), 35.0, atol=1e-6)


def _elevations_about_target(path: dict[str, list[dict[str, list[float]]]]) -> np.ndarray:
    angles = []
    for entry in path["camera_path"]:
        c2w = np.array(entry["camera_to_world"]).reshape(4, 4)
        forward = -c2w[:3, 2]
        angles.append(np.degrees(np.arcsin(-forward @ np.array([0.0, -1.0, 0.0]))))
    return np.array(angles)


def test_orbits_the_scene_frame_recorded_in_our_header(tmp_path: Path) -> None:
    """A job's PLY records its observed region: the orbit aims at its centre, not at the
    Gaussians' box (here scattered far from it), and ``--up`` falls back to that box."""
    frame = SceneFrame(np.array([0.0, 0.0, 1.0]), np.array([5.0, -3.0, 1.0]), 0.5, 0.2, "plane")
    splats = random_splats(50, seed=2)  # around the origin
    write_ply(tmp_path / "s.ply", splats, up=frame.up, comments=frame.header_comments())
    out = tmp_path / "out"
    assert main(["preview", str(tmp_path / "s.ply"), "--out", str(out), *TINY, "--no-video"]) == 0
    assert _target(out) == pytest.approx(frame.center, abs=1e-6)
    args = ["preview", str(tmp_path / "s.ply"), "--out", str(out), *TINY, "--no-video", "--up=+z"]
    assert main(args) == 0
    assert np.linalg.norm(_target(out) - frame.center) > 3.0


def _target(out: Path) -> np.ndarray:
    """The point the first orbit camera looks at, on its axis at the orbit's distance from
    the recorded up axis: where the axes of two opposite cameras cross."""
    path = json.loads((out / "preview_camera_path.json").read_text())["camera_path"]
    a, b = (np.array(path[i]["camera_to_world"]).reshape(4, 4) for i in (0, len(path) // 2))
    rows = np.concatenate([a[:3, :2].T, b[:3, :2].T])  # ⟂ to each view axis
    rhs = np.concatenate([a[:3, :2].T @ a[:3, 3], b[:3, :2].T @ b[:3, 3]])
    return np.asarray(np.linalg.lstsq(rows, rhs, rcond=None)[0])


def test_up_option_overrides_and_foreign_files_default_to_z(tmp_path: Path) -> None:
    path = write_custom_ply(tmp_path / "other.ply", inria_columns(random_splats(10, sh_degree=0)))
    out = tmp_path / "out"
    assert main(["preview", str(path), "--out", str(out), *TINY, "--no-video"]) == 0
    first = json.loads((out / "preview_camera_path.json").read_text())["camera_path"][0]
    assert np.array(first["camera_to_world"]).reshape(4, 4)[2, 1] > 0  # image up ≈ +z
    assert main(["preview", str(path), "--out", str(out), *TINY, "--no-video", "--up=-x"]) == 0
    first = json.loads((out / "preview_camera_path.json").read_text())["camera_path"][0]
    assert np.array(first["camera_to_world"]).reshape(4, 4)[0, 1] < 0  # image up ≈ -x
    assert not (out / "preview.mp4").exists()


def test_options_reach_the_orbit(tmp_path: Path) -> None:
    write_ply(tmp_path / "s.ply", random_splats(5), up=[0, 0, 1])
    args = ["preview", str(tmp_path / "s.ply"), "--out", str(tmp_path), "--size", "16x16",
            "--fps", "2", "--seconds", "6", "--elevation", "45", "--sweep", "270",
            "--no-stills"]  # fmt: skip
    assert main(args) == 0
    path = json.loads((tmp_path / "preview_camera_path.json").read_text())
    assert (path["seconds"], len(path["camera_path"]), path["render_width"]) == (6.0, 12, 16.0)
    forward = -np.array(path["camera_path"][0]["camera_to_world"]).reshape(4, 4)[:3, 2]
    assert np.degrees(np.arcsin(-forward[2])) == pytest.approx(45.0)


def test_invalid_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ply(tmp_path / "s.ply", random_splats(5))
    base = ["preview", str(tmp_path / "s.ply"), "--out", str(tmp_path / "o")]
    assert main([*base, "--seconds", "3"]) == 1
    assert "invalid preview option: seconds must be in [5, 10], got 3.0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--size", "big"])
    assert exc.value.code == 2
    assert "size must look like 1280x720" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--up", "0,0,0"])
    assert "up must be" in capsys.readouterr().err


def test_incomplete_preview_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_ply(tmp_path / "empty.ply", random_splats(0))
    assert main(["preview", str(tmp_path / "empty.ply"), "--out", str(tmp_path / "o"), *TINY]) == 1
    captured = capsys.readouterr()
    warning = json.loads(captured.out.splitlines()[0])
    assert warning == {
        "event": "warning", "stage": "preview",
        "message": "preview skipped: the splat has no Gaussians",
    }  # fmt: skip
    assert "error: preview incomplete" in captured.err
    assert not (tmp_path / "o" / "preview.mp4").exists()


def test_parse_up_forms() -> None:
    assert np.array_equal(parse_up("+z"), [0, 0, 1]) and np.array_equal(parse_up("-Y"), [0, -1, 0])
    assert np.allclose(parse_up("0, 3, 4"), [0, 0.6, 0.8])
