"""In-memory form of a COLMAP sparse model (``cameras``, ``images``, ``points3D``, rigs, frames).

Conventions (COLMAP's): poses are ``cam_from_world`` (world → camera, OpenCV camera axes),
quaternions are ``(w, x, y, z)``; pixel coordinates put the centre of the top-left pixel at
``(0.5, 0.5)``; ``points2D`` are in the *distorted* (original) image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pipeline.colmap.camera_models import CameraModelName, model_by_name

__all__ = [
    "INVALID_POINT3D_ID",
    "SENSOR_CAMERA",
    "ColmapCamera",
    "ColmapFrame",
    "ColmapImage",
    "ColmapModel",
    "ColmapRig",
    "Points3D",
    "RigSensor",
    "qvec_to_rotmat",
    "rotmat_to_qvec",
]

# point3D id that marks a 2D point without a 3D point (uint64 max).
INVALID_POINT3D_ID = np.uint64(2**64 - 1)
# COLMAP's SensorType enum: INVALID = -1, CAMERA = 0, IMU = 1.
SENSOR_CAMERA = 0

F64 = NDArray[np.float64]


def qvec_to_rotmat(qvec: F64) -> F64:
    """Rotation matrix ``[3, 3]`` from a quaternion ``[4]`` ``(w, x, y, z)`` (normalised first)."""
    q = np.asarray(qvec, dtype=np.float64)
    q = q / np.abs(q).max()  # first bring it near 1, so the norm cannot overflow
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotmat_to_qvec(rotation: F64) -> F64:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` for a rotation matrix ``[3, 3]``."""
    R = np.asarray(rotation, dtype=np.float64)
    # Symmetric 4x4 whose top eigenvector is the quaternion (robust for every rotation).
    K = (
        np.array(
            [
                [
                    R[0, 0] - R[1, 1] - R[2, 2],
                    R[1, 0] + R[0, 1],
                    R[2, 0] + R[0, 2],
                    R[2, 1] - R[1, 2],
                ],
                [
                    R[1, 0] + R[0, 1],
                    R[1, 1] - R[0, 0] - R[2, 2],
                    R[2, 1] + R[1, 2],
                    R[0, 2] - R[2, 0],
                ],
                [
                    R[2, 0] + R[0, 2],
                    R[2, 1] + R[1, 2],
                    R[2, 2] - R[0, 0] - R[1, 1],
                    R[1, 0] - R[0, 1],
                ],
                [
                    R[2, 1] - R[1, 2],
                    R[0, 2] - R[2, 0],
                    R[1, 0] - R[0, 1],
                    R[0, 0] + R[1, 1] + R[2, 2],
                ],
            ]
        )
        / 3.0
    )
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    x, y, z, w = eigenvectors[:, int(np.argmax(eigenvalues))]
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q


@dataclass(frozen=True)
class ColmapCamera:
    """One camera (intrinsics).

    Attributes:
        camera_id: id referenced by images.
        model: COLMAP model name.
        width: image width in pixels.
        height: image height in pixels.
        params: the model's parameters in COLMAP order (pixels for focal lengths / centre).
    """

    camera_id: int
    model: CameraModelName
    width: int
    height: int
    params: tuple[float, ...]

    def param(self, name: str) -> float:
        """A parameter by COLMAP name (``"fx"`` also answers ``"f"`` models, same for ``fy``)."""
        names = model_by_name(self.model).params
        if name in ("fx", "fy") and name not in names and "f" in names:
            name = "f"
        return self.params[names.index(name)]


@dataclass
class ColmapImage:
    """One registered image.

    Attributes:
        image_id: id referenced by point tracks.
        qvec: ``[4]`` float64 rotation of ``cam_from_world`` ``(w, x, y, z)``.
        tvec: ``[3]`` float64 translation of ``cam_from_world`` (world units).
        camera_id: its camera.
        name: file name relative to the image folder, e.g. ``"2024-01-02_03-04-05_000012.jpg"``.
        points2d: ``[N, 2]`` float64 keypoints, pixels in the distorted image.
        point3d_ids: ``[N]`` uint64 id of each keypoint's 3D point, ``INVALID_POINT3D_ID`` if none.
    """

    image_id: int
    qvec: F64
    tvec: F64
    camera_id: int
    name: str
    points2d: F64 = field(default_factory=lambda: np.zeros((0, 2)))
    point3d_ids: NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    def rotation(self) -> F64:
        """``[3, 3]`` world → camera rotation."""
        return qvec_to_rotmat(self.qvec)

    def world_to_camera(self) -> F64:
        """``[4, 4]`` float64 world → camera transform (OpenCV axes)."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation()
        matrix[:3, 3] = self.tvec
        return matrix

    def camera_center(self) -> F64:
        """``[3]`` camera centre in world coordinates."""
        return np.asarray(-self.rotation().T @ self.tvec)


@dataclass
class Points3D:
    """All 3D points, stored column-wise (real models hold millions).

    Attributes:
        ids: ``[P]`` uint64 point ids.
        xyz: ``[P, 3]`` float64 positions, world units.
        rgb: ``[P, 3]`` uint8 colours.
        error: ``[P]`` float64 mean reprojection error, pixels.
        track_offsets: ``[P + 1]`` int64; point ``i``'s track is elements
            ``track_offsets[i]:track_offsets[i + 1]`` of the two arrays below.
        track_image_ids: ``[T]`` uint32 image id of each track element.
        track_point2d_idx: ``[T]`` uint32 index into that image's ``points2d``.
    """

    ids: NDArray[np.uint64]
    xyz: F64
    rgb: NDArray[np.uint8]
    error: F64
    track_offsets: NDArray[np.int64]
    track_image_ids: NDArray[np.uint32]
    track_point2d_idx: NDArray[np.uint32]

    @classmethod
    def empty(cls) -> Points3D:
        return cls(
            ids=np.zeros(0, np.uint64),
            xyz=np.zeros((0, 3)),
            rgb=np.zeros((0, 3), np.uint8),
            error=np.zeros(0),
            track_offsets=np.zeros(1, np.int64),
            track_image_ids=np.zeros(0, np.uint32),
            track_point2d_idx=np.zeros(0, np.uint32),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def track_lengths(self) -> NDArray[np.int64]:
        """``[P]`` number of observations of each point."""
        return np.diff(self.track_offsets)

    def track(self, index: int) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """``(image_ids, point2d_idx)`` of the point at row ``index``."""
        start, stop = self.track_offsets[index], self.track_offsets[index + 1]
        return self.track_image_ids[start:stop], self.track_point2d_idx[start:stop]


@dataclass(frozen=True)
class RigSensor:
    """A non-reference sensor of a rig.

    Attributes:
        sensor_type: COLMAP ``SensorType`` (0 camera, 1 IMU).
        sensor_id: the camera id for cameras.
        sensor_from_rig: ``(qvec [4], tvec [3])`` or ``None`` when the pose is unknown.
    """

    sensor_type: int
    sensor_id: int
    sensor_from_rig: tuple[F64, F64] | None


@dataclass(frozen=True)
class ColmapRig:
    """A rig (COLMAP ≥ 3.12 ``rigs.bin``).

    Attributes:
        rig_id: rig id.
        ref_sensor: ``(sensor_type, sensor_id)`` of the reference sensor, ``None`` for no sensor.
        sensors: the other sensors, with their poses relative to the rig.
    """

    rig_id: int
    ref_sensor: tuple[int, int] | None
    sensors: tuple[RigSensor, ...] = ()


@dataclass(frozen=True)
class ColmapFrame:
    """A frame: one capture of a rig (COLMAP ≥ 3.12 ``frames.bin``).

    Attributes:
        frame_id: frame id.
        rig_id: its rig.
        qvec: ``[4]`` rotation of ``rig_from_world``.
        tvec: ``[3]`` translation of ``rig_from_world``.
        data_ids: ``(sensor_type, sensor_id, data_id)`` per measurement; for cameras the data id
            is the image id.
    """

    frame_id: int
    rig_id: int
    qvec: F64
    tvec: F64
    data_ids: tuple[tuple[int, int, int], ...]


@dataclass
class ColmapModel:
    """A sparse model as stored in one folder.

    Attributes:
        cameras: by camera id.
        images: by image id, in file order.
        points3d: all points.
        rigs: by rig id, or ``None`` when the folder has no ``rigs.bin`` (pre-3.12 models).
        frames: by frame id, or ``None`` when the folder has no ``frames.bin``.
    """

    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points3d: Points3D
    rigs: dict[int, ColmapRig] | None = None
    frames: dict[int, ColmapFrame] | None = None

    def images_by_name(self) -> dict[str, ColmapImage]:
        """Images keyed by file name (names are unique in a valid model)."""
        return {image.name: image for image in self.images.values()}
