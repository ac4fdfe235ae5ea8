"""COLMAP sparse models: binary reader and writer, camera models, lens distortion.

Public API::

    read_model(folder) -> ColmapModel          # cameras/images/points3D (+ rigs/frames) .bin
    write_model(model, folder) -> None
    read_text_model(folder), write_text_model(model, folder)   # the .txt form
    read_any_model(folder) -> ColmapModel      # .bin when cameras.bin is there, else .txt
    ColmapModel, ColmapCamera, ColmapImage, Points3D, ColmapRig, ColmapFrame, RigSensor
    CAMERA_MODELS, model_by_id, model_by_name  # COLMAP's camera model table
"""

from pipeline.colmap.binary_reader import (
    read_cameras,
    read_frames,
    read_images,
    read_model,
    read_points3d,
    read_rigs,
)
from pipeline.colmap.binary_writer import write_model
from pipeline.colmap.camera_models import (
    CAMERA_MODELS,
    CameraModelName,
    CameraModelSpec,
    model_by_id,
    model_by_name,
)
from pipeline.colmap.model import (
    INVALID_POINT3D_ID,
    SENSOR_CAMERA,
    ColmapCamera,
    ColmapFrame,
    ColmapImage,
    ColmapModel,
    ColmapRig,
    Points3D,
    RigSensor,
    qvec_to_rotmat,
    rotmat_to_qvec,
)
from pipeline.colmap.text import (
    TEXT_MODEL_FILES,
    read_any_model,
    read_text_model,
    write_text_model,
)

__all__ = [
    "CAMERA_MODELS",
    "INVALID_POINT3D_ID",
    "SENSOR_CAMERA",
    "TEXT_MODEL_FILES",
    "CameraModelName",
    "CameraModelSpec",
    "ColmapCamera",
    "ColmapFrame",
    "ColmapImage",
    "ColmapModel",
    "ColmapRig",
    "Points3D",
    "RigSensor",
    "model_by_id",
    "model_by_name",
    "qvec_to_rotmat",
    "read_any_model",
    "read_cameras",
    "read_frames",
    "read_images",
    "read_model",
    "read_points3d",
    "read_rigs",
    "read_text_model",
    "rotmat_to_qvec",
    "write_model",
    "write_text_model",
]
