"""Input checks shared by every backend: a bad call fails with a message naming the problem."""

from __future__ import annotations

import torch

from pipeline.render.types import Camera, Gaussians, RenderSettings, num_sh_bases

__all__ = ["check_render_inputs"]


def check_render_inputs(gaussians: Gaussians, camera: Camera, settings: RenderSettings) -> None:
    """Raise ``ValueError`` unless the Gaussians, camera and settings can be rendered together."""
    _check_settings(settings)
    _check_camera(camera)
    _check_gaussians(gaussians, settings.sh_degree)


def _check_settings(settings: RenderSettings) -> None:
    num_sh_bases(settings.sh_degree)  # raises for a degree outside 0..3
    if not 0.0 < settings.near_plane < settings.far_plane:
        raise ValueError(
            "render settings need 0 < near_plane < far_plane, got "
            f"near_plane={settings.near_plane}, far_plane={settings.far_plane}"
        )
    if settings.eps2d < 0.0:
        raise ValueError(f"eps2d must be ≥ 0, got {settings.eps2d}")
    if len(settings.background) != 3:
        raise ValueError(f"background must be 3 values (RGB), got {settings.background!r}")


def _check_camera(camera: Camera) -> None:
    if camera.width < 1 or camera.height < 1:
        raise ValueError(f"image size must be positive, got {camera.width}x{camera.height}")
    if tuple(camera.world_to_camera.shape) != (4, 4) or tuple(camera.K.shape) != (3, 3):
        raise ValueError(
            "camera needs world_to_camera [4, 4] and K [3, 3], got "
            f"{list(camera.world_to_camera.shape)} and {list(camera.K.shape)}"
        )


def _check_gaussians(gaussians: Gaussians, sh_degree: int) -> None:
    n = len(gaussians)
    expected = {
        "means": (n, 3),
        "quats": (n, 4),
        "scales": (n, 3),
        "opacities": (n,),
    }
    for name, shape in expected.items():
        actual = tuple(getattr(gaussians, name).shape)
        if actual != shape:
            raise ValueError(f"Gaussians.{name} must have shape {list(shape)}, got {list(actual)}")
    sh = gaussians.sh
    needed = num_sh_bases(sh_degree)
    if sh.dim() != 3 or sh.shape[0] != n or sh.shape[2] != 3 or sh.shape[1] < needed:
        raise ValueError(
            f"Gaussians.sh must have shape [{n}, K ≥ {needed}, 3] for SH degree {sh_degree}, "
            f"got {list(sh.shape)}"
        )
    dtypes = {t.dtype for t in gaussians._tensors()}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        names = sorted(str(d) for d in dtypes)
        raise ValueError(f"Gaussians tensors must share one floating dtype, got {names}")
    if next(iter(dtypes)) not in (torch.float32, torch.float64):
        raise ValueError(f"Gaussians must be float32 or float64, got {next(iter(dtypes))}")
