"""A synthetic job with known ground truth, for tests and the demo.

::

    scene = make_synthetic_job(job_root, SyntheticConfig(views=40, width=160, height=120))
    scene.gaussians, scene.cameras, scene.frames   # ground truth
"""

from pipeline.synthetic.job import (
    SyntheticCameraModel,
    SyntheticConfig,
    SyntheticScene,
    make_synthetic_job,
)

__all__ = ["SyntheticCameraModel", "SyntheticConfig", "SyntheticScene", "make_synthetic_job"]
