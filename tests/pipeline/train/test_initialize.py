"""Initial Gaussians from SfM points, and the random start without points."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pipeline.errors import InputError
from pipeline.render.sh import rgb_to_sh, sh_to_rgb
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


def empty_cells_reference(
    points: torch.Tensor, scene: SceneData
) -> tuple[list[set[tuple[int, int]]], list[float], int]:
    """Per training view, the (column, row) cells of an 8-cell grid along its longer side that
    no point projects into (none when they are under a quarter of its cells), and the deepest
    visible point's depth; plus the number of cells."""
    empties, fars, total = [], [], 0
    for view in scene.train:
        cam = view.camera
        cols, rows = (8, round(8 * cam.height / cam.width))
        hit, far = set(), 0.0
        for p in points.double():
            local = cam.world_to_camera.double()[:3, :3] @ p + cam.world_to_camera.double()[:3, 3]
            if local[2] <= 0:
                continue
            u, v = (cam.K.double() @ (local / local[2]))[:2].tolist()
            if 0 <= u < cam.width and 0 <= v < cam.height:
                hit.add((int(u * cols / cam.width), int(v * rows / cam.height)))
                far = max(far, float(local[2]))
        empty = {(c, r) for c in range(cols) for r in range(rows)} - hit
        empties.append(empty if len(empty) >= 0.25 * cols * rows else set())
        fars.append(far)
        total += cols * rows
    return empties, fars, total


def test_points_are_topped_up_where_they_leave_views_empty() -> None:
    scene = tiny_scene(n_cloud=20, columns=3, rows=2, width=32, height=24, point_fraction=0.1)
    points, colors = scene.points, scene.point_colors
    config = TrainConfig(fill_uncovered_points=400)
    splats = initial_splats(scene, config, torch.Generator().manual_seed(3))
    empties, fars, total = empty_cells_reference(points, scene)
    share = sum(len(e) for e in empties) / total
    assert 0.5 < share < 1.0  # the sparse points cover some cells, far from all
    added = splats.means[len(points) :].double()
    assert len(added) == round(400 * share)
    assert torch.equal(splats.means[: len(points)], points)  # the SfM points come first
    assert torch.equal(splats.sh[: len(points), 0], rgb_to_sh(colors.float() / 255.0))
    for mean, dc in zip(added, splats.sh[len(points) :, 0], strict=True):
        # Some view sees it in one of its empty cells, no deeper than its deepest point, and
        # its colour is that view's pixel there.
        matches = []
        for view, empty, far in zip(scene.train, empties, fars, strict=True):
            cam = view.camera
            w2c = cam.world_to_camera.double()
            local = w2c[:3, :3] @ mean + w2c[:3, 3]
            u, v = (cam.K.double() @ (local / local[2]))[:2].tolist()
            cols, rows = 8, round(8 * cam.height / cam.width)
            cell = (int(u * cols / cam.width), int(v * rows / cam.height))
            if 0 < local[2] <= far * (1 + 1e-5) and cell in empty:
                pixel = view.image[min(int(v), cam.height - 1), min(int(u), cam.width - 1)]
                matches.append(torch.allclose(sh_to_rgb(dc), pixel.float() / 255.0, atol=1e-3))
        assert any(matches)
    again = initial_splats(scene, config, torch.Generator().manual_seed(3))
    assert torch.equal(again.means, splats.means)


def test_points_that_cover_every_view_get_no_top_up() -> None:
    scene = tiny_scene(n_cloud=5, columns=2, rows=2, width=8, height=6)
    # One point on the ray of every cell centre of every view, 2 m deep.
    rays = []
    for view in scene.train:
        cam = view.camera
        u = (torch.arange(16, dtype=torch.float64) + 0.5) * cam.width / 16
        v = (torch.arange(12, dtype=torch.float64) + 0.5) * cam.height / 12
        uu, vv = torch.meshgrid(u, v, indexing="xy")
        pix = torch.stack([uu.flatten(), vv.flatten(), torch.ones(uu.numel(), dtype=torch.float64)])
        local = torch.linalg.solve(cam.K.double(), pix).T * 2.0
        w2c = cam.world_to_camera.double()
        rays.append((local - w2c[:3, 3]) @ w2c[:3, :3])
    points = torch.cat(rays).float()
    config = TrainConfig(fill_uncovered_points=1000)
    splats = initial_splats(scene_with_points(points), config, torch.Generator().manual_seed(0))
    assert len(splats) == len(points)
    plain = initial_splats(scene_with_points(points), TrainConfig(), torch.Generator())
    assert len(plain) == len(points) and TrainConfig().fill_uncovered_points == 0


@pytest.mark.parametrize(("empty_cells", "topped_up"), [(1, False), (11, False), (12, True)])
def test_only_views_with_a_quarter_of_their_cells_empty_are_topped_up(
    empty_cells: int, topped_up: bool
) -> None:
    scene = tiny_scene(n_cloud=5, columns=1, rows=1, width=32, height=24)
    (view,) = scene.train
    cam = view.camera
    # One point 2 m deep on the ray of each cell centre of the 8×6 grid, but the first cells.
    centres = [((c + 0.5) * 4, (r + 0.5) * 4) for r in range(6) for c in range(8)][empty_cells:]
    pix = torch.tensor([[u, v, 1.0] for u, v in centres], dtype=torch.float64).T
    local = torch.linalg.solve(cam.K.double(), pix).T * 2.0
    w2c = cam.world_to_camera.double()
    points = ((local - w2c[:3, 3]) @ w2c[:3, :3]).float()
    config = TrainConfig(fill_uncovered_points=480)
    colours = torch.full(points.shape, 9, dtype=torch.uint8)
    sparse = replace(scene, points=points, point_colors=colours)
    splats = initial_splats(sparse, config, torch.Generator().manual_seed(1))
    assert len(splats) == len(points) + (10 * empty_cells if topped_up else 0)
