"""Projection and SH agree with gsplat's pure-torch reference helpers (float64)."""

from __future__ import annotations

import pytest
import torch

from pipeline.render.projection import project, quat_to_rotmat
from pipeline.render.sh import eval_sh, rgb_to_sh, sh_to_rgb
from tests.pipeline.render.factories import look_at_camera, random_gaussians

gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_projection_matches_gsplat_reference(seed: int) -> None:
    gaussians = random_gaussians(300, seed=seed)
    camera = look_at_camera((0.3, -0.4, -3.0))
    ours = project(gaussians, camera)
    covars, _ = gsplat_impl._quat_scale_to_covar_preci(
        gaussians.quats, gaussians.scales, compute_preci=False
    )
    radii, means2d, depths, conics, _ = gsplat_impl._fully_fused_projection(
        gaussians.means,
        covars,
        camera.world_to_camera[None],
        camera.K[None],
        camera.width,
        camera.height,
    )
    assert torch.allclose(ours.means2d, means2d[0], atol=1e-9)
    assert torch.allclose(ours.depths, depths[0], atol=1e-12)
    assert torch.allclose(ours.conics, conics[0], rtol=1e-9, atol=1e-9)
    assert torch.equal(ours.radii, radii[0])


def test_quaternion_rotation_is_proper_and_normalises() -> None:
    q = torch.randn(50, 4, dtype=torch.float64) * 3.0
    R = quat_to_rotmat(q)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(R @ R.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(50, dtype=torch.float64))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat_reference(degree: int) -> None:
    g = torch.Generator().manual_seed(degree)
    sh = torch.randn(100, 16, 3, generator=g, dtype=torch.float64)
    dirs = torch.randn(100, 3, generator=g, dtype=torch.float64)
    ours = eval_sh(degree, sh, dirs)
    k = (degree + 1) ** 2
    ref = gsplat_impl._spherical_harmonics(
        degree, torch.nn.functional.normalize(dirs, dim=-1), sh[:, :k]
    )
    assert torch.allclose(ours, ref, atol=1e-10)


def test_rgb_sh_round_trip() -> None:
    rgb = torch.rand(10, 3, dtype=torch.float64)
    assert torch.allclose(sh_to_rgb(rgb_to_sh(rgb)), rgb)
