"""The ground-truth Gaussians of the synthetic scene: a small textured room.

World frame: COLMAP-style with gravity along +y (y points down), so "up" is −y and objects
stand on the floor at ``y = 0`` with negative ``y``. Contents, all built from Gaussians:

- a checkered floor disc (radius ``ROOM_RADIUS``) with colour noise;
- a cylindrical wall of coloured vertical bands around it (so every view ray hits something);
- a few coloured spheres with latitude stripes on the floor near the centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.render.sh import rgb_to_sh
from pipeline.render.types import Gaussians

__all__ = ["ROOM_HEIGHT", "ROOM_RADIUS", "SPHERES", "SceneParts", "build_room"]

ROOM_RADIUS = 4.5  # metres, wall radius (and floor disc radius)
ROOM_HEIGHT = 3.6  # metres, wall height above the floor
_FLOOR_SHARE, _WALL_SHARE = 0.45, 0.30  # of the Gaussian budget; the rest goes to objects
_CHECKER = 0.6  # metres, floor checker cell
# Spheres resting on the floor: (centre, radius) in metres; y = -radius.
SPHERES: tuple[tuple[tuple[float, float, float], float], ...] = (
    ((0.75, -0.35, 0.35), 0.35),
    ((-0.7, -0.3, -0.45), 0.3),
    ((-0.2, -0.25, 0.85), 0.25),
    ((0.3, -0.4, -0.9), 0.4),
)
_COLOURS = ((0.85, 0.25, 0.2), (0.2, 0.45, 0.85), (0.95, 0.8, 0.2), (0.3, 0.75, 0.35))
_WALL_COLOURS = (
    (0.8, 0.55, 0.45),
    (0.45, 0.6, 0.75),
    (0.75, 0.75, 0.6),
    (0.5, 0.4, 0.6),
    (0.55, 0.7, 0.5),
    (0.85, 0.7, 0.5),
)


@dataclass
class SceneParts:
    """Gaussians plus the colour each was given.

    Attributes:
        gaussians: activated parameters, float32, SH degree 0.
        rgb: ``[N, 3]`` float32 colour in [0, 1] (the DC colour).
        part: ``[N]`` int64: 0 floor, 1 wall, ``2 + k`` sphere ``k`` of ``SPHERES``.
    """

    gaussians: Gaussians
    rgb: Tensor
    part: Tensor


def build_room(num_gaussians: int, generator: torch.Generator) -> SceneParts:
    """About ``num_gaussians`` Gaussians forming the room (seeded by ``generator``)."""
    if num_gaussians < 200:
        raise ValueError(f"the synthetic room needs at least 200 Gaussians, got {num_gaussians}")
    floor = _floor(int(num_gaussians * _FLOOR_SHARE), generator)
    wall = _wall(int(num_gaussians * _WALL_SHARE), generator)
    budget = num_gaussians - len(floor[0]) - len(wall[0])
    parts = [floor, wall, *_spheres(max(budget, 40), generator)]
    means, scales, quats, rgb = (torch.cat([p[i] for p in parts]) for i in range(4))
    labels = torch.cat([torch.full((len(p[0]),), k) for k, p in enumerate(parts)]).long()
    noise = (torch.rand(rgb.shape, generator=generator) - 0.5) * 0.12
    rgb = (rgb + noise).clamp(0.02, 0.98)
    gaussians = Gaussians(
        means=means,
        quats=quats,
        scales=scales,
        opacities=torch.full((len(means),), 0.95),
        sh=rgb_to_sh(rgb)[:, None, :],
    )
    return SceneParts(gaussians, rgb, labels)


_Part = tuple[Tensor, Tensor, Tensor, Tensor]  # means, scales, quats, rgb


def _floor(count: int, generator: torch.Generator) -> _Part:
    """Flat Gaussians on a grid clipped to the floor disc, checkered."""
    area = math.pi * ROOM_RADIUS**2
    spacing = math.sqrt(area / max(count, 1))
    ticks = torch.arange(-ROOM_RADIUS, ROOM_RADIUS + 1e-6, spacing)
    x, z = torch.meshgrid(ticks, ticks, indexing="xy")
    x, z = x.reshape(-1), z.reshape(-1)
    keep = x**2 + z**2 <= (ROOM_RADIUS + 0.5 * spacing) ** 2
    x, z = x[keep], z[keep]
    jitter = (torch.rand(len(x), 2, generator=generator) - 0.5) * 0.3 * spacing
    means = torch.stack([x + jitter[:, 0], torch.zeros_like(x), z + jitter[:, 1]], dim=-1)
    scales = torch.tensor([0.55 * spacing, 0.01, 0.55 * spacing]).expand(len(x), 3).clone()
    checker = ((torch.floor(x / _CHECKER) + torch.floor(z / _CHECKER)) % 2).unsqueeze(-1)
    rgb = checker * torch.tensor([0.9, 0.85, 0.75]) + (1 - checker) * torch.tensor([0.2, 0.3, 0.35])
    return means, scales, _identity_quats(len(x)), rgb


def _wall(count: int, generator: torch.Generator) -> _Part:
    """Gaussians on the cylinder around the room, flat along the radius, in coloured bands."""
    circumference = 2 * math.pi * ROOM_RADIUS
    rows = max(2, round(math.sqrt(count * ROOM_HEIGHT / circumference)))
    cols = max(8, count // rows)
    angle = torch.arange(cols) * (2 * math.pi / cols)
    height = -ROOM_HEIGHT + (torch.arange(rows) + 0.5) * (ROOM_HEIGHT + 0.3) / rows
    a, h = torch.meshgrid(angle, height, indexing="xy")
    a, h = a.reshape(-1), h.reshape(-1)
    a = a + (torch.rand(len(a), generator=generator) - 0.5) * 0.3 * (2 * math.pi / cols)
    means = torch.stack([ROOM_RADIUS * torch.cos(a), h, ROOM_RADIUS * torch.sin(a)], dim=-1)
    size = 0.55 * max(circumference / cols, (ROOM_HEIGHT + 0.3) / rows)
    scales = torch.tensor([0.02, size, size]).expand(len(a), 3).clone()
    # Rotate local x onto the outward normal (cos a, 0, sin a): a turn of -a about +y.
    quats = torch.stack(
        [torch.cos(-a / 2), torch.zeros_like(a), torch.sin(-a / 2), torch.zeros_like(a)], dim=-1
    )
    palette = torch.tensor(_WALL_COLOURS)
    band = (a / (2 * math.pi) * 18).long() % len(palette)
    shade = (1.0 - 0.25 * (h / -ROOM_HEIGHT)).clamp(0.6, 1.0).unsqueeze(-1)
    return means, scales, quats, palette[band] * shade


def _spheres(count: int, generator: torch.Generator) -> list[_Part]:
    """The spheres of ``SPHERES``, striped by latitude, Gaussians shared by surface area."""
    areas = torch.tensor([radius * radius for _, radius in SPHERES])
    shares = (areas / areas.sum() * count).round().long().clamp(min=10)
    return [
        _sphere(int(n), centre, radius, colour, generator)
        for n, (centre, radius), colour in zip(shares.tolist(), SPHERES, _COLOURS, strict=True)
    ]


def _sphere(
    count: int,
    centre: tuple[float, float, float],
    radius: float,
    colour: tuple[float, float, float],
    generator: torch.Generator,
) -> _Part:
    k = torch.arange(count, dtype=torch.float32) + 0.5
    polar = torch.acos(1 - 2 * k / count)  # Fibonacci sphere: even coverage
    azimuth = math.pi * (1 + math.sqrt(5)) * k + torch.rand(1, generator=generator) * 6.28
    direction = torch.stack(
        [
            torch.sin(polar) * torch.cos(azimuth),
            torch.cos(polar),
            torch.sin(polar) * torch.sin(azimuth),
        ],
        dim=-1,
    )
    means = torch.tensor(centre) + radius * direction
    size = 0.8 * radius * math.sqrt(4 * math.pi / count)
    stripes = 0.65 + 0.35 * (torch.floor(polar / (math.pi / 7)) % 2).unsqueeze(-1)
    rgb = torch.tensor(colour) * stripes
    return means, torch.full((count, 3), size), _identity_quats(count), rgb


def _identity_quats(count: int) -> Tensor:
    return torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(count, 4).clone()
