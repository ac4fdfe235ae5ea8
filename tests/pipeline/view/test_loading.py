"""Reading .splat files back into parameters, against the encoder and a float64 reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.export.ply import write_ply
from pipeline.export.splat_format import write_splat
from pipeline.view.loading import load_splat_file
from tests.support.splats import random_splats


def test_a_splat_file_decodes_to_the_activated_values_within_8_bit_steps(tmp_path: Path) -> None:
    source = random_splats(500, sh_degree=0, seed=3)
    write_splat(tmp_path / "a.splat", source, sort=False)
    loaded = load_splat_file(tmp_path / "a.splat")
    assert loaded.file_type == "splat" and loaded.up is None
    got = loaded.splats.activated()
    want = source.activated()
    c0 = 0.28209479177387814
    rgb_want = np.clip(0.5 + c0 * want.sh[:, 0].double().numpy(), 0.0, 1.0)
    rgb_got = 0.5 + c0 * got.sh[:, 0].double().numpy()
    assert np.abs(rgb_got - rgb_want).max() <= 1.0 / 255 + 1e-6
    assert torch.equal(got.means, source.means)
    np.testing.assert_allclose(got.scales.numpy(), want.scales.numpy(), rtol=1e-6)
    opacity_want = want.opacities.double().numpy().clip(0.5 / 255, 1 - 0.5 / 255)
    assert np.abs(got.opacities.double().numpy() - opacity_want).max() <= 1.0 / 255 + 1e-6
    q_want = want.quats.double().numpy()
    q_want /= np.linalg.norm(q_want, axis=1, keepdims=True)
    q_got = got.quats.double().numpy()
    q_got /= np.linalg.norm(q_got, axis=1, keepdims=True)
    assert np.abs(np.abs((q_got * q_want).sum(axis=1)) - 1.0).max() < 2e-3


def test_a_ply_keeps_its_header_up_vector(tmp_path: Path) -> None:
    write_ply(tmp_path / "a.ply", random_splats(20, sh_degree=1), up=[0.0, -2.0, 0.0])
    loaded = load_splat_file(tmp_path / "a.ply")
    assert loaded.file_type == "ply" and len(loaded.splats) == 20
    assert loaded.up is not None
    np.testing.assert_allclose(loaded.up, np.array([0.0, -1.0, 0.0]))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.obj", b"", "expected one of .ply, .splat"),
        ("missing.splat", None, "no such splat file"),
        ("short.splat", b"\0" * 33, "not a multiple of 32"),
    ],
)
def test_bad_files_get_a_clear_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_splat_file(tmp_path / name)
