"""Training resolutions (box-filtered images, matching intrinsics) and the view order."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import InputError
from pipeline.scene import View
from pipeline.train.views import ViewOrder, ViewSet, auto_downscale, shrink_camera, shrink_image
from tests.pipeline.render.factories import look_at_camera


def view(width: int, height: int, seed: int = 0) -> View:
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (height, width, 3), generator=g, dtype=torch.uint8)
    return View(f"v{seed}.jpg", look_at_camera((0.0, 0.0, -3.0), width=width, height=height), image)


def project(camera_K: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    uvw = camera_K @ point
    return uvw[:2] / uvw[2]


def test_auto_downscale_is_the_smallest_power_of_two_within_the_limit() -> None:
    assert auto_downscale([view(1920, 1080)], 1600) == 2
    assert auto_downscale([view(1600, 900)], 1600) == 1
    assert auto_downscale([view(1920, 1080), view(3840, 2160)], 320) == 16
    assert auto_downscale([], 1600) == 1


def test_shrunk_camera_maps_block_centres_to_pixel_centres() -> None:
    camera = view(40, 30).camera
    small = shrink_camera(camera, 4)
    assert (small.width, small.height) == (10, 7)  # floor, like the pooled image
    point = torch.tensor([0.3, -0.2, 2.5], dtype=torch.float64)
    assert torch.allclose(project(small.K, point), project(camera.K, point) / 4)


def test_shrunk_image_is_the_block_mean_with_partial_blocks_dropped() -> None:
    image = torch.rand(7, 10, 3, dtype=torch.float64)
    small = shrink_image(image, 3)
    assert small.shape == (2, 3, 3)
    assert torch.allclose(small[1, 2], image[3:6, 6:9].mean(dim=(0, 1)))
    assert shrink_image(image, 1) is image


def test_view_set_serves_scheduled_resolutions_from_the_training_one() -> None:
    v = view(64, 48)
    views = ViewSet([v], downscale=2, device=torch.device("cpu"))
    camera, image = views.get(0)
    assert (camera.width, camera.height) == (32, 24) and image.shape == (24, 32, 3)
    expected = torch.round(shrink_image(v.image_float(), 2) * 255) / 255
    assert torch.allclose(image, expected)
    quarter_camera, quarter = views.get(0, divisor=4)
    assert (quarter_camera.width, quarter_camera.height) == (8, 6) and quarter.shape == (6, 8, 3)
    assert torch.allclose(quarter, shrink_image(expected, 4), atol=1e-6)
    tiny_camera, tiny = views.get(0, divisor=100)  # never below one pixel
    assert tiny.shape[:2] == (1, 1) and tiny_camera.width == 1


def test_view_set_rejects_images_that_do_not_match_their_camera() -> None:
    bad = view(16, 12)
    bad.image = bad.image[:, :15]
    with pytest.raises(InputError, match=r"view 'v0.jpg': image is torch.uint8 \[12, 15, 3\]"):
        ViewSet([bad], 1, torch.device("cpu"))
    floats = view(16, 12)
    floats.image = floats.image.float()
    with pytest.raises(InputError, match="expected uint8"):
        ViewSet([floats], 1, torch.device("cpu"))


def test_view_order_visits_every_view_once_per_epoch_deterministically() -> None:
    order = ViewOrder(7, seed=3)
    visits = [order.view_at(step) for step in range(21)]
    for epoch in range(3):
        assert sorted(visits[7 * epoch : 7 * epoch + 7]) == list(range(7))
    assert visits[:7] != visits[7:14]
    fresh = ViewOrder(7, seed=3)
    assert [fresh.view_at(step) for step in (15, 2, 20)] == [visits[15], visits[2], visits[20]]
    assert [ViewOrder(7, seed=4).view_at(s) for s in range(7)] != visits[:7]
