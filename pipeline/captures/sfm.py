"""Structure from motion for photos and videos without poses (pycolmap, the ``sfm`` extra).

Steps, all on the CPU, in ``OUT/sfm/``:

1. Images: photos are used where they are (``images_dir`` = the capture folder); photos of one
   pixel size share one camera (one focal length and distortion to estimate). Videos are
   sampled to ``frame_budget`` frames in all (shared in proportion to their lengths): each
   video's frames are cut into equal windows, one per kept frame, and the sharpest frame of
   each window (highest variance of the Laplacian of its grey image) is written as
   ``OUT/sfm/images/<video stem>/<index:06d>.jpg``; each video gets its own camera.
2. SIFT features (``peak_threshold`` below COLMAP's default, so low-contrast captures keep
   enough features; images larger than ``max_image_side`` are shrunk for extraction only).
3. Matching: sequential for videos and for photo sets larger than ``exhaustive_max_images``;
   exhaustive (every pair) otherwise. Sequential matching pairs each image (in name order)
   with its successors 1, 2, 4, 8, … (pycolmap 4's quadratic overlap, ``sequential_overlap``
   powers of two; not the 10 nearest: on the synthetic orbit that linear overlap drifted more,
   3.8° median rotation error against 0.9°).
4. Incremental mapping, twice: with the cameras' radial distortion refined (COLMAP's default)
   and with it held at 0 (focal lengths refined in both). Each keeps its largest
   reconstruction; the one with distortion held at 0 is kept unless the other registers more
   images, or as many with a mean reprojection error more than ``distortion_margin`` lower.
   On a weakly textured capture the focal length and the radial coefficient trade off: on the
   synthetic room (a pinhole camera, f = 200.9 px) the refined mappings landed either on
   f = 166-178 px with k ≈ -0.07 or on f = 245-307 px with k = 0.3-0.98, reprojecting no
   better (0.124 against 0.120 px), and training on the latter ended below a flat image; held
   at 0 the focal length came out at 195-198 px. A lens with marked distortion fits clearly
   better with it (a synthetic k = -0.2 lens: 0.137 against 0.236 px; k recovered as -0.19);
   a mild pincushion one (k = 0.15) fits as well either way on this scene, and the model at 0
   is kept (held-out PSNR 18.9 dB against 20.3 dB with k refined).
   When sequential matching leaves a mapping short of ``rematch_below`` of the images and
   there are at most ``exhaustive_max_images`` of them, the pairs not matched yet are matched
   too (exhaustive matching skips the pairs already in the database) and both mappings run
   again; the result's ``matching`` is then ``"sequential+exhaustive"``. (A thin chain of
   frame-to-frame matches can make the mapper split one orbit into two models whose
   self-calibrated cameras disagree; the extra pairs, e.g. across the closing orbit, tie them
   together.) The kept reconstruction is written as a binary model to ``OUT/sfm/sparse/0``.

A run fails with :class:`~pipeline.errors.SfmError` when fewer than ``min_registered`` images or
less than ``min_registered_fraction`` of them were registered (the message gives both numbers).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pipeline.captures.detect import Capture
from pipeline.colmap import ColmapModel, read_model
from pipeline.errors import MissingExtraError, SfmError, VideoError
from pipeline.run import StageTracker
from pipeline.video import DecodeReport, decode_frames

__all__ = [
    "SFM_INSTALL",
    "SfmOptions",
    "SfmResult",
    "check_photo_count",
    "frame_scores",
    "pick_sharpest",
    "reconstruct",
    "require_pycolmap",
    "sharpness",
]

log = logging.getLogger(__name__)

#: The command that installs the optional extra.
SFM_INSTALL = "pip install 'splatter-node[sfm]'"


@dataclass(frozen=True)
class SfmOptions:
    """Structure-from-motion settings.

    Attributes:
        frame_budget: frames sampled from all videos together.
        max_image_side: longer side (pixels) images are shrunk to for feature extraction.
        peak_threshold: SIFT's peak threshold (COLMAP's default is 0.0067).
        max_features: SIFT features per image at most.
        exhaustive_max_images: photo sets up to this size match every pair.
        sequential_overlap: with sequential matching, the successors 2**0 … 2**(n-1) of each
            frame are matched (with ``quadratic_overlap``; else the n nearest).
        quadratic_overlap: see ``sequential_overlap``.
        rematch_below: after sequential matching, a kept model with less than this share of
            the images (and at most ``exhaustive_max_images`` images) makes the remaining
            pairs be matched and the mapping run again.
        also_without_distortion: map a second time with the cameras' radial distortion held at
            0 (focal lengths still refined) and keep that model when it registers more images,
            or as many and the model with distortion is not at least ``distortion_margin``
            (a share) lower in mean reprojection error (see the module doc).
        distortion_margin: see ``also_without_distortion``.
        min_registered: fewest registered images accepted.
        min_registered_fraction: smallest share of the images that must be registered.
        threads: CPU threads (-1: all).
        seed: the mapper's random seed.
    """

    frame_budget: int = 120
    max_image_side: int = 1600
    peak_threshold: float = 0.002
    max_features: int = 8192
    exhaustive_max_images: int = 100
    sequential_overlap: int = 10
    quadratic_overlap: bool = True
    rematch_below: float = 0.9
    also_without_distortion: bool = True
    distortion_margin: float = 0.05
    min_registered: int = 3
    min_registered_fraction: float = 0.5
    threads: int = -1
    seed: int = 0


@dataclass
class SfmResult:
    """A reconstruction.

    Attributes:
        model: the kept model (registered images only).
        images_dir: the folder the model's image names are relative to.
        candidates: images given to structure from motion.
        registered: images in the kept model.
        matching: ``"sequential"``, ``"exhaustive"``, or ``"sequential+exhaustive"`` (the
            pairs left after sequential matching were matched too, see the module doc).
        duration_s: seconds of the whole step.
    """

    model: ColmapModel
    images_dir: Path
    candidates: int
    registered: int
    matching: str
    duration_s: float

    def summary(self) -> dict[str, Any]:
        return {
            "sfm_candidates": self.candidates,
            "registered": self.registered,
            "registered_fraction": round(self.registered / max(self.candidates, 1), 4),
            "matching": self.matching,
            "sfm_s": round(self.duration_s, 3),
        }


def check_photo_count(capture: Capture, options: SfmOptions | None = None) -> None:
    """Raises :class:`SfmError` for a photo folder too small to ever register enough images."""
    needed = (options or SfmOptions()).min_registered
    if capture.kind == "images" and len(capture.images) < needed:
        raise SfmError(
            f"{capture.root} holds {len(capture.images)} photos; structure from motion needs "
            f"at least {needed} overlapping photos"
        )


def require_pycolmap() -> None:
    """Raises :class:`MissingExtraError` (naming the install command) without pycolmap."""
    if importlib.util.find_spec("pycolmap") is None:
        raise MissingExtraError(
            f"photos and videos without poses need structure from motion, which needs the "
            f"optional 'sfm' extra (pycolmap): {SFM_INSTALL}"
        )


def reconstruct(
    capture: Capture, work_dir: Path, tracker: StageTracker, options: SfmOptions | None = None
) -> SfmResult:
    """Poses and points for ``capture`` (kind ``images`` or ``videos``).

    Raises:
        MissingExtraError: pycolmap is not installed.
        VideoError: a video cannot be decoded or has no frames.
        SfmError: too few images registered.
    """
    require_pycolmap()
    options = options or SfmOptions()
    started = time.perf_counter()
    with tracker.stage("sfm") as info:
        if capture.kind == "videos":
            images_dir = work_dir / "images"
            names = _sample_videos(capture.videos, images_dir, options, tracker)
            matching = "sequential"
        else:
            images_dir = capture.root
            names = [p.relative_to(capture.root).as_posix() for p in capture.images]
            small = len(names) <= options.exhaustive_max_images
            matching = "exhaustive" if small else "sequential"
        model, matching = _run_colmap(
            images_dir, names, work_dir, matching, capture.kind, options, tracker
        )
        result = SfmResult(model, images_dir, len(names), len(model.images), matching, 0.0)
        result.duration_s = time.perf_counter() - started
        info.update(result.summary())
    _check_registered(result, options)
    return result


def _check_registered(result: SfmResult, options: SfmOptions) -> None:
    fraction = result.registered / max(result.candidates, 1)
    if result.registered < options.min_registered or fraction < options.min_registered_fraction:
        raise SfmError(
            f"structure from motion registered {result.registered} of {result.candidates} "
            f"images ({100 * fraction:.0f} %); at least {options.min_registered} and "
            f"{100 * options.min_registered_fraction:.0f} % are needed (more overlap between "
            "photos, more texture, or sharper frames help)"
        )


def sharpness(rgb: NDArray[np.uint8], max_side: int = 480) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image, on a copy strided down to at
    most ``max_side`` pixels (a focus measure: blurred frames score low)."""
    stride = max(1, math.ceil(max(rgb.shape[:2]) / max_side))
    grey = rgb[::stride, ::stride].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var()) if lap.size else 0.0


def frame_scores(video: Path) -> list[float]:
    """:func:`sharpness` of every frame of ``video``, in decode order.

    Raises:
        VideoError: the video cannot be decoded or has no decodable frames.
    """
    scores = [sharpness(rgb) for _, rgb in decode_frames(video, range(2**62), DecodeReport())]
    if not scores:
        raise VideoError(video, "no decodable frames")
    return scores


def pick_sharpest(scores: list[float], budget: int) -> list[int]:
    """The index of the highest score in each of ``min(budget, len(scores))`` equal windows."""
    windows = np.array_split(np.arange(len(scores)), max(1, min(budget, len(scores))))
    return [int(w[np.argmax([scores[i] for i in w])]) for w in windows if len(w)]


def _sample_videos(
    videos: tuple[Path, ...], images_dir: Path, options: SfmOptions, tracker: StageTracker
) -> list[str]:
    """Write the sampled frames of every video; returns their names relative to
    ``images_dir``."""
    if images_dir.exists():
        shutil.rmtree(images_dir)
    scores = [frame_scores(video) for video in videos]
    total = sum(len(s) for s in scores)
    names: list[str] = []
    for number, (video, video_scores) in enumerate(zip(videos, scores, strict=True)):
        share = max(3, round(options.frame_budget * len(video_scores) / total))
        keep = pick_sharpest(video_scores, share)
        folder = images_dir / f"{number:02d}_{video.stem}"
        folder.mkdir(parents=True, exist_ok=True)
        for index, rgb in decode_frames(video, keep):
            Image.fromarray(rgb).save(folder / f"{index:06d}.jpg", quality=95)
            names.append(f"{folder.name}/{index:06d}.jpg")
        tracker.progress.progress("sfm", 20.0 * (number + 1) / len(videos), videos=number + 1)
    log.info("sampled %d frames from %d videos (%d frames)", len(names), len(videos), total)
    return names


def _run_colmap(
    images_dir: Path,
    names: list[str],
    work_dir: Path,
    matching: str,
    kind: str,
    options: SfmOptions,
    tracker: StageTracker,
) -> tuple[ColmapModel, str]:
    """The kept model and the matching that produced it."""
    import pycolmap

    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = options.threads
    extraction.max_image_size = options.max_image_side
    extraction.sift.peak_threshold = options.peak_threshold
    extraction.sift.max_num_features = options.max_features
    if kind == "videos":  # one camera per video: its frames are in a folder of their own
        groups = [(pycolmap.CameraMode.PER_FOLDER, sorted(names))]
    else:  # one camera per image size: photos of one size are assumed to share a lens
        groups = [(pycolmap.CameraMode.SINGLE, group) for group in _by_size(images_dir, names)]
    for mode, group in groups:
        pycolmap.extract_features(
            database, images_dir, image_names=group, camera_mode=mode,
            reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
        )  # fmt: skip
    tracker.progress.progress("sfm", 50.0, phase="features", images=len(names))
    _match(database, matching, options)
    tracker.progress.progress("sfm", 70.0, phase="matching", matching=matching)
    mappings = _map(database, images_dir, work_dir, len(names), options, tracker)
    best = _choose(mappings, options.distortion_margin)
    fewest = min(_registered(rec) for rec in mappings)
    short = fewest < options.rematch_below * len(names)
    if matching == "sequential" and short and len(names) <= options.exhaustive_max_images:
        log.info(
            "after sequential matching a mapping registered %d of %d images; matching the "
            "remaining pairs",
            fewest, len(names),
        )  # fmt: skip
        _match(database, "exhaustive", options)
        matching = "sequential+exhaustive"
        tracker.progress.progress("sfm", 70.0, phase="matching", matching=matching)
        again = _choose(
            _map(database, images_dir, work_dir, len(names), options, tracker),
            options.distortion_margin,
        )
        if _registered(again) >= _registered(best):  # the extra pairs did not make it worse
            best = again
    sparse = work_dir / "sparse" / "0"
    shutil.rmtree(sparse, ignore_errors=True)
    sparse.mkdir(parents=True)
    best.write(sparse)
    return read_model(sparse), matching


def _by_size(images_dir: Path, names: list[str]) -> list[list[str]]:
    """``names`` grouped by stored pixel size (COLMAP reads pixels as stored, without EXIF
    orientation), each group sorted; groups in order of their first name."""
    groups: dict[tuple[int, int], list[str]] = {}
    for name in sorted(names):
        with Image.open(images_dir / name) as image:
            groups.setdefault(image.size, []).append(name)
    return list(groups.values())


def _match(database: Path, matching: str, options: SfmOptions) -> None:
    import pycolmap

    matcher = pycolmap.FeatureMatchingOptions()
    matcher.num_threads = options.threads
    if matching == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matcher, device=pycolmap.Device.cpu)
        return
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = options.sequential_overlap
    pairing.quadratic_overlap = options.quadratic_overlap
    pycolmap.match_sequential(
        database, matching_options=matcher, pairing_options=pairing, device=pycolmap.Device.cpu
    )


def _map(
    database: Path,
    images_dir: Path,
    work_dir: Path,
    candidates: int,
    options: SfmOptions,
    tracker: StageTracker,
) -> list[Any]:
    """The largest reconstruction (a ``pycolmap.Reconstruction``, or ``None``) of the mapping
    with the lens distortion refined and, with ``options.also_without_distortion``, of the one
    with it held at 0.

    Raises:
        SfmError: no mapping reconstructed anything.
    """
    mappings = [_map_once(database, images_dir, work_dir, candidates, options, tracker, True)]
    if options.also_without_distortion:
        held = _map_once(database, images_dir, work_dir, candidates, options, tracker, False)
        mappings.append(held)
    if all(rec is None for rec in mappings):
        raise SfmError(
            f"structure from motion could not reconstruct the scene from {candidates} images "
            "(no two images share enough features)"
        )
    for label, rec in zip(("refined", "held at 0"), mappings, strict=False):
        if rec is not None:
            camera = next(iter(rec.cameras.values()))
            log.info(
                "mapping with the lens distortion %s: %d images, %.3f px mean reprojection "
                "error, camera %s %s",
                label, rec.num_reg_images(), rec.compute_mean_reprojection_error(),
                camera.model_name, [round(float(v), 4) for v in camera.params],
            )  # fmt: skip
    return mappings


def _registered(rec: Any) -> int:
    return 0 if rec is None else int(rec.num_reg_images())


def _choose(mappings: list[Any], margin: float) -> Any:
    """The mapping with the distortion held at 0 (the second) unless the one with it refined
    (the first) registers more images, or as many with a mean reprojection error lower by more
    than ``margin`` (a share); a missing mapping loses."""
    refined, held = [*mappings, None][:2]
    if refined is None or held is None:
        return held if refined is None else refined
    if refined.num_reg_images() != held.num_reg_images():
        return max(refined, held, key=_registered)
    error = refined.compute_mean_reprojection_error()
    better = error < (1.0 - margin) * held.compute_mean_reprojection_error()
    log.info("keeping the mapping with the lens distortion %s", "refined" if better else "at 0")
    return refined if better else held


def _map_once(
    database: Path,
    images_dir: Path,
    work_dir: Path,
    candidates: int,
    options: SfmOptions,
    tracker: StageTracker,
    refine_distortion: bool,
) -> Any:
    """The largest reconstruction of one incremental mapping, ``None`` when there is none."""
    import pycolmap

    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = options.threads
    mapping.random_seed = options.seed
    mapping.ba_refine_extra_params = refine_distortion
    registered = [0]

    def next_image() -> None:
        registered[0] += 1
        pct = 70.0 + 30.0 * min(registered[0] / max(candidates, 1), 1.0)
        tracker.progress.progress("sfm", min(pct, 99.0), phase="mapping", registered=registered[0])

    output = work_dir / ("mapping" if refine_distortion else "mapping_undistorted")
    shutil.rmtree(output, ignore_errors=True)
    models = pycolmap.incremental_mapping(
        database, images_dir, output, mapping, next_image_callback=next_image
    )
    if not models:
        return None
    return max(models.values(), key=lambda rec: rec.num_reg_images())
