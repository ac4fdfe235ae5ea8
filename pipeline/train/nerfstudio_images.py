"""Downscaled image copies for ``ns-train``, so that it trains at the reference's resolution.

nerfstudio's dataparser (``nerfstudio/data/dataparsers/nerfstudio_dataparser.py``,
``_get_fname``) picks the image scale itself when ``--downscale-factor`` is not given, as in the
reference: starting from factor 1, it doubles the factor while the first image's longer side
divided by it is still at least 1600 px *and* ``<data>/images_<2×factor>/<file name>`` exists,
then loads every image from ``images_<factor>/<file name>``. The reference's ``ns-process-data``
always writes ``images_2``, ``images_4`` and ``images_8`` (ffmpeg ``scale=iw/2^k:ih/2^k``), so
1920-px frames train at 960 px there. Our ``transforms.json`` points at ``Frames/`` without
copying, so without these folders nerfstudio would train at full resolution; this module writes
the levels nerfstudio will look for (and no others), each image shrunk by ``2^k`` (sizes floored
like nerfstudio's camera rescaling, bicubic like ffmpeg's default, JPEG quality 95).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from pipeline.atomic import atomic_path
from pipeline.errors import InputError

__all__ = ["MAX_AUTO_RESOLUTION", "auto_downscale_factor", "write_downscaled_images"]

# nerfstudio_dataparser.MAX_AUTO_RESOLUTION (v1.1.5).
MAX_AUTO_RESOLUTION = 1600
JPEG_QUALITY = 95


def auto_downscale_factor(width: int, height: int) -> int:
    """The factor nerfstudio picks for an image of this size when every level exists."""
    factor = 1
    while max(width, height) / factor >= MAX_AUTO_RESOLUTION:
        factor *= 2
    return factor


def write_downscaled_images(data_dir: Path, workers: int = 2) -> int:
    """Write ``images_2 … images_<f>`` under ``data_dir`` for the frames of its
    ``transforms.json``; returns ``f``, the factor ``ns-train`` will train at (1: none needed).

    Existing copies of the right size are kept (reruns).

    Raises:
        InputError: ``transforms.json`` or an image it names cannot be read.
    """
    sources = _frame_paths(data_dir)
    width, height = _size(sources[0])
    factor = auto_downscale_factor(width, height)
    levels = [2**k for k in range(1, factor.bit_length())]
    jobs = [(src, data_dir / f"images_{level}" / src.name, level) for level in levels
            for src in sources]  # fmt: skip
    for level in levels:
        (data_dir / f"images_{level}").mkdir(exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: _shrink(*job), jobs))
    return factor


def _frame_paths(data_dir: Path) -> list[Path]:
    path = data_dir / "transforms.json"
    try:
        frames = json.loads(path.read_text(encoding="utf-8"))["frames"]
        sources = [data_dir / frame["file_path"] for frame in frames]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"nerfstudio dataset unusable: cannot read {path}: {exc}") from exc
    if not sources:
        raise InputError(f"nerfstudio dataset unusable: {path} lists no frames")
    return sources


def _size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as exc:
        raise InputError(f"nerfstudio dataset unusable: cannot read image {path}: {exc}") from exc


def _shrink(source: Path, target: Path, level: int) -> None:
    """``source`` shrunk by ``level`` into ``target`` (kept if already there at that size)."""
    try:
        with Image.open(source) as image:
            size = (image.width // level, image.height // level)
            if target.is_file() and _size(target) == size:
                return
            small = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    except OSError as exc:
        raise InputError(f"nerfstudio dataset unusable: cannot read image {source}: {exc}") from exc
    with atomic_path(target) as temp:
        small.save(temp, format="JPEG", quality=JPEG_QUALITY)
