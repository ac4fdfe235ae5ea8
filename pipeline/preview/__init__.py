"""Step 5: preview stills, orbit video and nerfstudio camera path (best effort).

- :mod:`~pipeline.preview.previews`: :func:`render_preview`, what the ``run`` orchestrator calls.
- :mod:`~pipeline.preview.bounds`: the subject region (scene frame's cylinder or a robust,
  up-aligned box of the Gaussians).
- :mod:`~pipeline.preview.camera_path`: orbit and still cameras, camera-path JSON.
- :mod:`~pipeline.preview.render`: in-process frames; :mod:`pipeline.video`: the ffmpeg encoder.
"""

from pipeline.preview.bounds import BoundsConfig, SceneBounds, SubjectCylinder, robust_bounds
from pipeline.preview.camera_path import OrbitConfig, PathCamera, orbit_cameras, still_cameras
from pipeline.preview.previews import PREVIEW_FILES, PreviewConfig, PreviewResult, render_preview

__all__ = [
    "PREVIEW_FILES",
    "BoundsConfig",
    "OrbitConfig",
    "PathCamera",
    "PreviewConfig",
    "PreviewResult",
    "SceneBounds",
    "SubjectCylinder",
    "orbit_cameras",
    "render_preview",
    "robust_bounds",
    "still_cameras",
]
