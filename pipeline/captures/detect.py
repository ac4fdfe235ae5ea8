"""Which kind of capture a path holds (``python -m pipeline train DATA``).

Layouts, checked in this order:

1. ``auki``: the Auki job folder, ``datasets/<scan>/Frames.mp4`` + the refined COLMAP model in
   ``refined/global/refined_sfm_combined/`` (what ``python -m pipeline run`` trains).
2. ``nerfstudio``: ``transforms.json`` (DATA may also be that file), as ``ns-process-data``
   writes it.
3. ``colmap``: ``images/`` + a model in ``sparse/0/`` or ``sparse/`` (binary ``*.bin`` or text
   ``*.txt``); image names may include sub-folders of ``images/``.
4. ``images``: a folder of photos (``.jpg``, ``.jpeg``, ``.png``, also in sub-folders) without
   poses: structure from motion finds them.
5. ``videos``: one video file, or a folder of videos, without poses: frames are sampled, then
   structure from motion.

A path that fits none raises :class:`~pipeline.errors.InputError` naming what was found and what
each layout needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from pipeline.colmap.text import TEXT_MODEL_FILES
from pipeline.contract import COLMAP_REQUIRED_FILES as MODEL_FILES
from pipeline.contract import JobLayout
from pipeline.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUT_HELP",
    "VIDEO_SUFFIXES",
    "Capture",
    "LayoutKind",
    "detect_layout",
]

LayoutKind = Literal["auki", "nerfstudio", "colmap", "images", "videos"]

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png"})
VIDEO_SUFFIXES: Final = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm"})

#: What each layout needs, in plain words (error messages and ``--help``).
LAYOUT_HELP: Final = (
    "COLMAP project: images/ plus a model in sparse/0/ or sparse/ (cameras, images, points3D "
    "as .bin or .txt)",
    "nerfstudio data: transforms.json (plus sparse_pc.ply or the ply_file_path it names)",
    "photos without poses: a folder of .jpg/.jpeg/.png images (at least 3; needs the sfm extra)",
    "videos without poses: one video file or a folder of videos (needs the sfm extra)",
    "Auki job folder: datasets/<scan>/Frames.mp4 plus refined/global/refined_sfm_combined/",
)


@dataclass(frozen=True)
class Capture:
    """A detected capture.

    Attributes:
        kind: the layout.
        root: the folder the capture lives in (DATA, or the folder of a single file).
        model_dir: ``colmap`` and ``auki``: the folder of the COLMAP model.
        images_dir: ``colmap``: the folder the model's image names are relative to.
        transforms: ``nerfstudio``: the ``transforms.json`` file.
        images: ``images``: every photo, sorted by path.
        videos: ``videos``: every video, sorted by path.
    """

    kind: LayoutKind
    root: Path
    model_dir: Path | None = None
    images_dir: Path | None = None
    transforms: Path | None = None
    images: tuple[Path, ...] = field(default=())
    videos: tuple[Path, ...] = field(default=())

    def describe(self) -> str:
        """One line for logs and the report."""
        if self.kind in ("colmap", "auki"):
            return f"{self.kind} ({self.model_dir})"
        if self.kind == "nerfstudio":
            return f"nerfstudio ({self.transforms})"
        count = len(self.images) if self.kind == "images" else len(self.videos)
        return f"{count} {self.kind} without poses in {self.root}"


def detect_layout(data: Path) -> Capture:
    """The layout of ``data`` (a folder, a video file or a ``transforms.json``).

    Raises:
        InputError: ``data`` is missing or fits no layout (the message lists what was found
            and what each layout needs).
    """
    if not data.exists():
        raise InputError(f"{data} does not exist")
    if data.is_file():
        return _detect_file(data)
    for detect in (_auki, _nerfstudio, _colmap, _media):
        capture = detect(data)
        if capture is not None:
            return capture
    raise _no_layout(data)


def _detect_file(path: Path) -> Capture:
    if path.name == "transforms.json":
        return Capture("nerfstudio", path.parent, transforms=path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return Capture("videos", path.parent, videos=(path,))
    raise InputError(
        f"{path} is a file but neither a video ({', '.join(sorted(VIDEO_SUFFIXES))}) nor a "
        f"transforms.json; {_needs()}"
    )


def _auki(data: Path) -> Capture | None:
    layout = JobLayout(data)
    if not layout.datasets_dir.is_dir():
        return None
    return Capture("auki", data, model_dir=layout.model_dir)


def _nerfstudio(data: Path) -> Capture | None:
    transforms = data / "transforms.json"
    return Capture("nerfstudio", data, transforms=transforms) if transforms.is_file() else None


def _colmap(data: Path) -> Capture | None:
    candidates = [data / "sparse" / "0", data / "sparse"]
    if not candidates[1].is_dir():
        return None
    for folder in candidates:
        if _has_model(folder):
            images_dir = data / "images"
            if not images_dir.is_dir():
                raise InputError(
                    f"{data} has a COLMAP model in {folder} but no images/ folder next to it"
                )
            return Capture("colmap", data, model_dir=folder, images_dir=images_dir)
    found = sorted(p.name for p in candidates[1].rglob("*") if p.is_file())[:10]
    raise InputError(
        f"{candidates[1]} holds no complete COLMAP model (found: {found or 'nothing'}); "
        f"sparse/0/ or sparse/ needs {', '.join(MODEL_FILES)} or {', '.join(TEXT_MODEL_FILES)}"
    )


def _has_model(folder: Path) -> bool:
    forms = (MODEL_FILES, TEXT_MODEL_FILES)
    return any(all((folder / n).is_file() for n in files) for files in forms)


def _media(data: Path) -> Capture | None:
    files = sorted(p for p in data.rglob("*") if p.is_file() and not _hidden(p, data))
    images = tuple(p for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
    videos = tuple(p for p in files if p.suffix.lower() in VIDEO_SUFFIXES)
    if images and videos:
        raise InputError(
            f"{data} holds both photos ({len(images)}) and videos ({len(videos)}); "
            "put one kind in a folder"
        )
    if images:
        return Capture("images", data, images=images)
    if videos:
        return Capture("videos", data, videos=videos)
    return None


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _no_layout(data: Path) -> InputError:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in data.iterdir())
    found = ", ".join(entries[:12]) + (", ..." if len(entries) > 12 else "") or "an empty folder"
    return InputError(f"no capture found in {data} (found: {found}); {_needs()}")


def _needs() -> str:
    return "expected one of: " + "; ".join(LAYOUT_HELP)
