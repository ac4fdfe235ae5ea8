"""COLMAP's camera models: ids, names and parameter lists (as in COLMAP's ``sensor/models.h``).

The id is what ``cameras.bin`` stores; the parameter count follows from the model, so a reader
that does not know a model id cannot find where the next record starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CAMERA_MODELS",
    "CameraModelName",
    "CameraModelSpec",
    "model_by_id",
    "model_by_name",
]

CameraModelName = Literal[
    "SIMPLE_PINHOLE",
    "PINHOLE",
    "SIMPLE_RADIAL",
    "RADIAL",
    "OPENCV",
    "OPENCV_FISHEYE",
    "FULL_OPENCV",
    "FOV",
    "SIMPLE_RADIAL_FISHEYE",
    "RADIAL_FISHEYE",
    "THIN_PRISM_FISHEYE",
    "RAD_TAN_THIN_PRISM_FISHEYE",
    "SIMPLE_DIVISION",
    "DIVISION",
    "SIMPLE_FISHEYE",
    "FISHEYE",
    "EUCM",
    "EQUIRECTANGULAR",
]


@dataclass(frozen=True)
class CameraModelSpec:
    """One camera model.

    Attributes:
        model_id: the integer stored in ``cameras.bin``.
        name: COLMAP's name for it.
        params: parameter names in storage order (focal lengths and principal point in pixels).
    """

    model_id: int
    name: CameraModelName
    params: tuple[str, ...]

    @property
    def num_params(self) -> int:
        return len(self.params)


CAMERA_MODELS: tuple[CameraModelSpec, ...] = (
    CameraModelSpec(0, "SIMPLE_PINHOLE", ("f", "cx", "cy")),
    CameraModelSpec(1, "PINHOLE", ("fx", "fy", "cx", "cy")),
    CameraModelSpec(2, "SIMPLE_RADIAL", ("f", "cx", "cy", "k")),
    CameraModelSpec(3, "RADIAL", ("f", "cx", "cy", "k1", "k2")),
    CameraModelSpec(4, "OPENCV", ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2")),
    CameraModelSpec(5, "OPENCV_FISHEYE", ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4")),
    CameraModelSpec(
        6,
        "FULL_OPENCV",
        ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
    ),
    CameraModelSpec(7, "FOV", ("fx", "fy", "cx", "cy", "omega")),
    CameraModelSpec(8, "SIMPLE_RADIAL_FISHEYE", ("f", "cx", "cy", "k")),
    CameraModelSpec(9, "RADIAL_FISHEYE", ("f", "cx", "cy", "k1", "k2")),
    CameraModelSpec(
        10,
        "THIN_PRISM_FISHEYE",
        ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "sx1", "sy1"),
    ),
    CameraModelSpec(
        11,
        "RAD_TAN_THIN_PRISM_FISHEYE",
        (
            "fx",
            "fy",
            "cx",
            "cy",
            "k0",
            "k1",
            "k2",
            "k3",
            "k4",
            "k5",
            "p0",
            "p1",
            "s0",
            "s1",
            "s2",
            "s3",
        ),
    ),
    CameraModelSpec(12, "SIMPLE_DIVISION", ("f", "cx", "cy", "k")),
    CameraModelSpec(13, "DIVISION", ("fx", "fy", "cx", "cy", "k")),
    CameraModelSpec(14, "SIMPLE_FISHEYE", ("f", "cx", "cy")),
    CameraModelSpec(15, "FISHEYE", ("fx", "fy", "cx", "cy")),
    CameraModelSpec(16, "EUCM", ("fx", "fy", "cx", "cy", "alpha", "beta")),
    CameraModelSpec(17, "EQUIRECTANGULAR", ("w", "h")),
)

_BY_ID: dict[int, CameraModelSpec] = {spec.model_id: spec for spec in CAMERA_MODELS}
_BY_NAME: dict[str, CameraModelSpec] = {spec.name: spec for spec in CAMERA_MODELS}


def model_by_id(model_id: int) -> CameraModelSpec | None:
    """The model stored as ``model_id``, or ``None`` if COLMAP defines no such id."""
    return _BY_ID.get(model_id)


def model_by_name(name: str) -> CameraModelSpec:
    """The model called ``name``; raises ``KeyError`` for an unknown name."""
    return _BY_NAME[name]
