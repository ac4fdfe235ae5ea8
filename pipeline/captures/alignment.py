"""How far recovered camera poses are from known ones, up to a similarity transform.

Structure from motion recovers poses only up to scale, rotation and translation of the world.
:func:`align_similarity` finds the similarity ``x ↦ s R x + t`` that best maps one point set onto
another (Umeyama 1991, least squares); :func:`pose_errors` aligns the recovered camera centres
onto the true ones with it and reports each camera's rotation error (degrees) and centre error
(true world units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["PoseErrors", "align_similarity", "pose_errors"]

F64 = NDArray[np.float64]


def align_similarity(source: F64, target: F64) -> tuple[float, F64, F64]:
    """``(s, R [3, 3], t [3])`` minimising ``Σ ||target_i - (s R source_i + t)||²``.

    Args:
        source: ``[N, 3]`` points, ``N ≥ 3`` and not all on a line.
        target: ``[N, 3]`` corresponding points.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    xs, xt = source - mean_s, target - mean_t
    covariance = xt.T @ xs / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rotation = u @ sign @ vt
    variance = float((xs**2).sum() / len(source))
    scale = float(np.trace(np.diag(singular) @ sign) / variance)
    return scale, rotation, mean_t - scale * rotation @ mean_s


@dataclass(frozen=True)
class PoseErrors:
    """Per-camera errors after alignment.

    Attributes:
        rotation_deg: ``[N]`` angle between the true and the aligned recovered orientation.
        position: ``[N]`` distance between the true and the aligned recovered centre.
        scale: the similarity's scale (true units per recovered unit).
    """

    rotation_deg: F64
    position: F64
    scale: float


def pose_errors(recovered: F64, true: F64) -> PoseErrors:
    """Errors of ``recovered`` ``[N, 4, 4]`` world → camera poses against ``true`` ones."""
    centres_r = np.stack([-p[:3, :3].T @ p[:3, 3] for p in recovered])
    centres_t = np.stack([-p[:3, :3].T @ p[:3, 3] for p in true])
    scale, rotation, shift = align_similarity(centres_r, centres_t)
    aligned = centres_r @ (scale * rotation).T + shift
    angles = []
    for pose_r, pose_t in zip(recovered, true, strict=True):
        # camera ← true world = camera ← recovered world ∘ recovered world ← true world (R^T).
        relative = pose_t[:3, :3] @ (pose_r[:3, :3] @ rotation.T).T
        cos = np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)
        angles.append(np.degrees(np.arccos(cos)))
    return PoseErrors(np.array(angles), np.linalg.norm(aligned - centres_t, axis=1), scale)
