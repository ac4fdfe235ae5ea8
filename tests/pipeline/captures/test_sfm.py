"""Structure from motion: frame sampling (fast), bad inputs, and a real pycolmap reconstruction of
the synthetic scene's photos aligned to the true poses (slow; needs the ``sfm`` extra)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipeline.captures.alignment import pose_errors
from pipeline.captures.sfm import frame_scores, pick_sharpest, sharpness
from pipeline.cli import main
from pipeline.colmap import read_model
from pipeline.errors import VideoError
from pipeline.synthetic import SyntheticConfig, make_synthetic_job
from pipeline.synthetic.captures import write_photos
from pipeline.video import encode_video
from tests.pipeline.synthetic.factories import make_tiny_job

HAS_PYCOLMAP = importlib.util.find_spec("pycolmap") is not None


def _reference_sharpness(rgb: np.ndarray) -> float:
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    values = []
    for y in range(1, grey.shape[0] - 1):
        for x in range(1, grey.shape[1] - 1):
            around = grey[y - 1, x] + grey[y + 1, x] + grey[y, x - 1] + grey[y, x + 1]
            values.append(4 * grey[y, x] - around)
    return float(np.var(values))


@pytest.mark.parametrize("seed", range(3))
def test_sharpness_matches_a_loop_reference(seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (23, 31, 3)).astype(np.uint8)
    assert sharpness(rgb) == pytest.approx(_reference_sharpness(rgb), rel=1e-4)


def test_blur_lowers_sharpness() -> None:
    frame = make_tiny_job_frames()[0]
    blurred = np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(2)))
    assert sharpness(blurred) < 0.5 * sharpness(frame)


def _reference_pick(scores: list[float], budget: int) -> list[int]:
    n, k = len(scores), min(budget, len(scores))
    picks, start = [], 0
    for w in range(k):
        size = n // k + (1 if w < n % k else 0)
        window = range(start, start + size)
        picks.append(max(window, key=lambda i: (scores[i], -i)))
        start += size
    return picks


@pytest.mark.parametrize(("count", "budget"), [(10, 3), (7, 7), (5, 9), (100, 13), (1, 1)])
def test_pick_sharpest_is_the_best_of_each_equal_window(count: int, budget: int) -> None:
    scores = np.random.default_rng(count).random(count).tolist()
    assert pick_sharpest(scores, budget) == _reference_pick(scores, budget)


_FRAMES: list[np.ndarray] = []


def make_tiny_job_frames() -> list[np.ndarray]:
    if not _FRAMES:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            _FRAMES.extend(make_tiny_job(Path(tmp)).frames)
    return _FRAMES


def test_video_sampling_keeps_the_sharp_frame_of_each_window(tmp_path: Path) -> None:
    frames = make_tiny_job_frames()
    sharp = {1, 3, 8, 10}  # one per window of 3 frames
    shown = [
        f if i in sharp else np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(1.5)))
        for i, f in enumerate(frames)
    ]
    encode_video(tmp_path / "walk.mp4", shown, (64, 48), fps=10, crf=12)
    assert pick_sharpest(frame_scores(tmp_path / "walk.mp4"), 4) == sorted(sharp)


def _train_error(data: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["train", str(data), "--out", str(out), "--steps", "2", "--no-preview"]) == 1
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_video_without_decodable_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(VideoError):
        frame_scores(tmp_path / "clip.mp4")
    if HAS_PYCOLMAP:
        message = _train_error(tmp_path / "clip.mp4", tmp_path / "out", capsys)
        assert message.startswith(f"error: cannot decode video {tmp_path / 'clip.mp4'}")


def test_two_photos_are_not_enough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = make_tiny_job_frames()
    for i in range(2):
        Image.fromarray(frames[i]).save(tmp_path / f"{i}.jpg")
    message = _train_error(tmp_path, tmp_path / "out", capsys)
    assert "holds 2 photos" in message and "at least 3" in message


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PYCOLMAP, reason="the 'sfm' extra (pycolmap) is not installed")
def test_photos_without_poses_reconstruct_align_and_train(tmp_path: Path) -> None:
    config = SyntheticConfig(views=30, width=256, height=192, gaussians=6000, points=500)
    scene = make_synthetic_job(tmp_path / "job", config)
    write_photos(scene, tmp_path / "photos")
    args = ["train", str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--threads", "1"]
    args += ["--steps", "500", "--max-gaussians", "2000", "--eval-every", "4", "--no-preview"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(args) == 0
    events = [json.loads(line) for line in stdout.getvalue().splitlines()]
    sfm = next(
        e
        for e in events
        if e["event"] == "stage" and e["stage"] == "sfm" and e["status"] == "completed"
    )
    assert sfm["registered_fraction"] >= 0.9 and sfm["matching"] == "exhaustive"

    model = read_model(tmp_path / "out" / "sfm" / "sparse" / "0")
    images = sorted(model.images.values(), key=lambda image: image.name)
    recovered = np.stack([image.world_to_camera() for image in images])
    true = np.stack(
        [scene.cameras[int(Path(i.name).stem)].world_to_camera.double().numpy() for i in images]
    )
    errors = pose_errors(recovered, true)
    # One shared SIMPLE_RADIAL camera with unknown focal length on a low-texture scene:
    # measured 0.9° / 1.6° rotation and 6 cm / 15 cm centre error (median / max), orbit radius 3 m
    # (0.7° / 2.7°, 5 cm / 22 cm with the distortion refined).
    assert np.median(errors.rotation_deg) < 1.5 and errors.rotation_deg.max() < 4.0
    assert np.median(errors.position) < 0.1 and errors.position.max() < 0.35
    assert len(model.cameras) == 1  # photos of one size share a camera
    # The true camera is a pinhole with fx = 200.9 px: mapped with its distortion held at 0 the
    # focal length comes out at 197.5 px (refined, it drifted to 255 px with k = 0.36).
    focal = model.cameras[1].params[0]
    assert abs(focal / scene.model.cameras[1].param("fx") - 1) < 0.05

    # Training on the recovered poses beats a flat image of the mean colour by a clear margin:
    # measured 19.65 dB against 14.85 dB (from the true poses at the same settings 19.50 dB).
    # It stayed below the flat image (12.2-13.4 dB) while (1) the SfM camera came out at
    # f = 255 px, k = 0.36 (true: a pinhole, f = 200.9 px), now mapped with k held at 0 too
    # (f = 197.5 px kept), and (2) training started from the SfM points alone, which cover
    # only the striped walls, never the floor or the spheres; the CPU profile now tops up the
    # parts of the views no point covers.
    done = events[-1]
    assert done["event"] == "done" and done["metrics"]["views"] == 8
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["inputs"]["registered"] == len(images)
    assert report["quality"]["psnr"] > report["quality"]["flat_psnr"] + 3.0


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PYCOLMAP, reason="the 'sfm' extra (pycolmap) is not installed")
@pytest.mark.parametrize("seed", [0, 8, 9])
def test_a_video_is_sampled_and_reconstructed_with_one_camera(tmp_path: Path, seed: int) -> None:
    from pipeline.captures.detect import detect_layout
    from pipeline.captures.sfm import SfmOptions, reconstruct
    from pipeline.progress import NullProgress
    from pipeline.run import StageTracker

    config = SyntheticConfig(
        views=60, width=256, height=192, gaussians=6000, points=500, crf=18, seed=seed
    )
    scene = make_synthetic_job(tmp_path / "job", config)
    video = tmp_path / "walk.mp4"
    video.write_bytes(scene.layout.recording(config.scan).read_bytes())
    capture = detect_layout(video)
    result = reconstruct(capture, tmp_path / "sfm", StageTracker(NullProgress()), SfmOptions(40))
    assert (result.candidates, len(result.model.cameras)) == (40, 1)
    assert result.matching in ("sequential", "sequential+exhaustive")
    # Sequential matching pairs each frame only with its successors 1, 2, 4, 8, … (pycolmap 4's
    # quadratic overlap); on this low-texture orbit the mapper could then split the orbit into two
    # models (seed 2 once: 14 and 31 frames, their cameras f = 228 and 265 px) and keep the larger.
    # Sequential matching alone, one run per scene seed 0-11: 35/40, 24/40 and 31/40 for seeds
    # 6, 8 and 9, 40/40 for the rest (CI saw 31/40 for seed 0: multi-threaded matching varies).
    # With the remaining pairs matched when the kept model is short of 90 %: 40/40 for all 12
    # (seeds 3 and 6-10 needed it: 5.3-6.7 s instead of about 3.2 s).
    assert result.registered / result.candidates >= 0.9
    images = sorted(result.model.images.values(), key=lambda image: image.name)
    assert all(image.name.startswith("00_walk/") for image in images)
    recovered = np.stack([image.world_to_camera() for image in images])
    true = np.stack(
        [scene.cameras[int(Path(i.name).stem)].world_to_camera.double().numpy() for i in images]
    )
    errors = pose_errors(recovered, true)
    # Sequential matching without loop closure drifts along the orbit (seed 0: 0.9° median,
    # 3.0° max); over seeds 0-11 the median rotation error was 0.7-2.4°, the median centre error
    # 3-17 cm.
    assert np.median(errors.rotation_deg) < 4.0 and np.median(errors.position) < 0.3


class _Mapping:
    """What :func:`pipeline.captures.sfm._choose` reads of a ``pycolmap.Reconstruction``."""

    def __init__(self, registered: int, error: float) -> None:
        self.registered, self.error = registered, error

    def num_reg_images(self) -> int:
        return self.registered

    def compute_mean_reprojection_error(self) -> float:
        return self.error


@pytest.mark.parametrize(
    ("refined", "held", "kept"),
    [
        ((30, 0.124), (30, 0.120), "held"),  # the synthetic room: k drifted, no better fit
        ((30, 0.133), (30, 0.136), "held"),  # 2 % better is within the 5 % margin
        ((30, 0.137), (30, 0.236), "refined"),  # a k = -0.2 lens fits clearly better with k
        ((40, 0.284), (24, 0.303), "refined"),  # more images registered wins
        ((21, 0.130), (30, 0.133), "held"),
        (None, (30, 0.2), "held"),
        ((30, 0.2), None, "refined"),
    ],
)
def test_the_mapping_without_distortion_is_kept_unless_the_other_is_clearly_better(
    refined: tuple[int, float] | None, held: tuple[int, float] | None, kept: str
) -> None:
    from pipeline.captures.sfm import _choose

    mappings = {"refined": refined and _Mapping(*refined), "held": held and _Mapping(*held)}
    assert _choose([mappings["refined"], mappings["held"]], 0.05) is mappings[kept]
    if held is None:  # only one mapping (also_without_distortion=False)
        assert _choose([mappings["refined"]], 0.05) is mappings["refined"]
