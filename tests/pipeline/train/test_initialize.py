"""Initial Gaussians from SfM points, and the random start without points."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.errors import InputError
from pipeline.render.sh import sh_to_rgb
from pipeline.scene import SceneData
from pipeline.train.config import TrainConfig
from pipeline.train.initialize import (
    camera_extent,
    initial_splats,
    knn_log_scales,
    random_unit_quats,
)
from tests.pipeline.train.factories import tiny_scene


def knn_mean_distance_brute_force(points: torch.Tensor, k: int) -> torch.Tensor:
    """Mean distance to the ``k`` nearest other points, from the full float64 distance matrix."""
    p = points.double()
    distances = torch.cdist(p, p)
    distances.fill_diagonal_(math.inf)
    return distances.sort(dim=1).values[:, :k].mean(dim=1)


def scene_with_points(points: torch.Tensor, colors: torch.Tensor | None = None) -> SceneData:
    scene = tiny_scene(n_cloud=5, columns=2, rows=2, width=8, height=6)
    if colors is None:
        colors = torch.full(points.shape, 128, dtype=torch.uint8)
    return replace(scene, points=points, point_colors=colors)


def test_knn_scales_match_brute_force_distances() -> None:
    points = torch.randn(300, 3, generator=torch.Generator().manual_seed(0)) * 2.0
    expected = knn_mean_distance_brute_force(points, 3).log().float()
    assert torch.allclose(knn_log_scales(points), expected, atol=1e-6)


def test_knn_scales_with_few_points_use_what_there_is() -> None:
    pair = torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.0, 4.0]])
    assert torch.allclose(knn_log_scales(pair), torch.full((2,), math.log(5.0)))
    assert knn_log_scales(pair[:1], fallback=0.25).tolist() == [pytest.approx(math.log(0.25))]


def test_knn_scales_of_coincident_points_are_floored() -> None:
    points = torch.zeros(5, 3)
    assert torch.isfinite(knn_log_scales(points)).all()


def test_random_quaternions_are_unit_seeded_and_spread() -> None:
    q = random_unit_quats(2000, torch.Generator().manual_seed(1))
    assert torch.allclose(q.norm(dim=-1), torch.ones(2000), atol=1e-6)
    assert torch.equal(q, random_unit_quats(2000, torch.Generator().manual_seed(1)))
    assert q.mean(dim=0).abs().max() < 0.05  # uniform rotations: symmetric components


def test_sfm_initialisation_follows_splatfacto() -> None:
    g = torch.Generator().manual_seed(2)
    points = torch.rand(50, 3, generator=g)
    colors = torch.randint(0, 256, (50, 3), generator=g, dtype=torch.uint8)
    splats = initial_splats(scene_with_points(points, colors), TrainConfig(), g)
    assert torch.equal(splats.means, points)
    expected_scale = knn_mean_distance_brute_force(points, 3).log().float()
    assert torch.allclose(splats.log_scales, expected_scale[:, None].expand(50, 3), atol=1e-6)
    assert torch.allclose(sh_to_rgb(splats.sh[:, 0]), colors.float() / 255, atol=1e-6)
    assert splats.sh.shape == (50, 16, 3) and not splats.sh[:, 1:].any()
    assert torch.allclose(torch.sigmoid(splats.logit_opacities), torch.full((50,), 0.1))
    assert torch.allclose(splats.quats.norm(dim=-1), torch.ones(50), atol=1e-6)


def test_initialisation_is_deterministic_per_seed() -> None:
    scene = scene_with_points(torch.rand(30, 3, generator=torch.Generator().manual_seed(3)))
    a = initial_splats(scene, TrainConfig(), torch.Generator().manual_seed(7))
    b = initial_splats(scene, TrainConfig(), torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a.tensors(), b.tensors(), strict=True))


def test_point_cap_keeps_a_seeded_subset_in_order() -> None:
    points = torch.arange(300, dtype=torch.float32)[:, None].repeat(1, 3)
    config = TrainConfig(max_init_points=40)
    splats = initial_splats(scene_with_points(points), config, torch.Generator().manual_seed(4))
    kept = splats.means[:, 0]
    assert len(kept) == 40 and torch.all(kept[1:] > kept[:-1])


def test_without_points_gaussians_fill_the_cameras_frusta() -> None:
    scene = scene_with_points(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8))
    config = TrainConfig(random_init_points=500, random_init_scale=3.0, sh_degree=1)
    splats = initial_splats(scene, config, torch.Generator().manual_seed(5))
    _, extent = camera_extent(scene.train)
    means = splats.means.double()
    seen_by = torch.zeros(len(means), dtype=torch.bool)
    for view in scene.train:  # float64 projection of every point into every view
        cam = view.camera
        w2c = cam.world_to_camera.double()
        local = means @ w2c[:3, :3].T + w2c[:3, 3]
        z = local[:, 2]
        pixel = local[:, :2] / z.unsqueeze(-1) * cam.K.double().diagonal()[:2] + cam.K[:2, 2]
        inside = (pixel >= 0).all(-1) & (pixel[:, 0] <= cam.width) & (pixel[:, 1] <= cam.height)
        seen_by |= inside & (z > 0) & (z <= 3.0 * extent * (1 + 1e-5))
    assert len(splats) == 500 and bool(seen_by.all())
    depths = torch.stack([(means - v.camera.camera_center.double()).norm(dim=-1)
                          for v in scene.train]).min(dim=0).values  # fmt: skip
    assert depths.max() > 1.5 * extent  # the whole depth range is used, not a small part
    dc = splats.sh[:, 0]
    assert splats.sh.shape == (500, 4, 3) and dc.min() >= 0 and dc.max() < 1
    assert torch.isfinite(splats.log_scales).all()


def test_camera_extent_is_the_largest_distance_from_the_mean_centre() -> None:
    scene = tiny_scene(n_cloud=5, width=8, height=6)
    centres = torch.stack([v.camera.camera_center.float() for v in scene.train])
    centre, extent = camera_extent(scene.train)
    assert torch.allclose(centre, centres.mean(dim=0))
    assert extent == pytest.approx(float((centres - centres.mean(dim=0)).norm(dim=-1).max()))
    assert camera_extent(scene.train[:1])[1] == 1.0


@pytest.mark.parametrize(
    ("points", "colors", "message"),
    [
        (torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.uint8), r"points must be \[P, 3\]"),
        (torch.zeros(4, 3), torch.zeros(3, 3, dtype=torch.uint8), r"colours \[3, 3\] do not"),
        (
            torch.tensor([[0.0, math.nan, 0.0]]),
            torch.zeros(1, 3, dtype=torch.uint8),
            "non-finite coordinates",
        ),
    ],
)
def test_malformed_points_are_rejected(
    points: torch.Tensor, colors: torch.Tensor, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        initial_splats(scene_with_points(points, colors), TrainConfig(), torch.Generator())
