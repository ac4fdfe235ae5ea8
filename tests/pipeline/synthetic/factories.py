"""Tiny synthetic jobs for tests (about a second each to make)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipeline.synthetic import SyntheticConfig, SyntheticScene, make_synthetic_job

TINY = SyntheticConfig(views=12, width=64, height=48, gaussians=600, points=400)


def tiny_config(**overrides: Any) -> SyntheticConfig:
    """The tiny scene's settings with ``overrides`` applied."""
    return dataclasses.replace(TINY, **overrides)


def make_tiny_job(job_root: Path, **overrides: Any) -> SyntheticScene:
    """A 12-view 64×48 synthetic job in ``job_root``."""
    return make_synthetic_job(job_root, tiny_config(**overrides))
