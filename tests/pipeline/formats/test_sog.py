"""SOG: round trips within the stated quantisation bounds, splat-transform's decode, bad files.

Bounds (pipeline/formats/sog.py): positions within half a 16-bit step of the log-transformed
range; the three stored quaternion components within 1/(255·√2), the recomputed one within
3/(255·√2); log-scales and f_dc decode to their nearest codebook entry; sigmoid(opacity)
within 0.5/255; SH bands 1–3 lossy (a palette), checked against our own decoder exactly and
against the input by error size.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.formats.arrays import SplatArrays
from pipeline.formats.ply import read_ply_arrays
from pipeline.formats.quantize import morton_order
from pipeline.formats.sog import SogFormatError, image_size, read_sog, write_sog
from tests.pipeline.formats.factories import random_arrays, scene_arrays
from tests.support.oracles import splat_transform

QUAT_STORED = 1 / (255 * math.sqrt(2))


def _unit(q: np.ndarray) -> np.ndarray:
    q64 = q.astype(np.float64)
    unit: np.ndarray = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    return unit


def assert_within_sog_bounds(original: SplatArrays, decoded: SplatArrays, sh_rms: float) -> None:
    """``decoded`` (file order) against ``original`` put in the writer's Morton order."""
    s = original.take(morton_order(original.means))
    t = np.sign(s.means.astype(np.float64)) * np.log1p(np.abs(s.means.astype(np.float64)))
    step = (t.max(axis=0) - t.min(axis=0)) / 65535
    t_dec = np.sign(decoded.means.astype(np.float64)) * np.log1p(np.abs(decoded.means))
    assert np.all(np.abs(t_dec - t) <= step / 2 + 1e-6)
    q, q_dec = _unit(s.quats), _unit(decoded.quats)
    error = np.minimum(np.abs(q - q_dec), np.abs(q + q_dec))  # q and -q: same rotation
    assert np.all(np.sort(error, axis=1)[:, :3] <= QUAT_STORED + 1e-6)
    assert np.all(error <= 3 * QUAT_STORED + 1e-6)
    for name, ours, theirs in (("log_scales", s.log_scales, decoded.log_scales),
                               ("f_dc", s.sh[:, 0], decoded.sh[:, 0])):  # fmt: skip
        book = np.unique(theirs)
        nearest = np.abs(ours.reshape(-1, 1) - book[None]).min(axis=1)
        assert np.all(np.abs(ours.reshape(-1) - theirs.reshape(-1)) <= nearest + 1e-6), name
    alpha = 1 / (1 + np.exp(-s.logit_opacities.astype(np.float64)))
    alpha_dec = 1 / (1 + np.exp(-decoded.logit_opacities.astype(np.float64)))
    assert np.all(np.abs(alpha - alpha_dec) <= 0.5 / 255 + 1e-6)
    assert decoded.sh.shape == s.sh.shape
    if s.sh_degree:
        rms = float(np.sqrt(((decoded.sh[:, 1:] - s.sh[:, 1:]) ** 2).mean()))
        assert rms <= sh_rms, rms


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_random(tmp_path: Path, sh_degree: int) -> None:
    splats = random_arrays(3000, sh_degree=sh_degree, seed=sh_degree)
    assert write_sog(tmp_path / "s.sog", splats) == 3000
    decoded = read_sog(tmp_path / "s.sog")
    # Independent random SH (σ 0.5) barely cluster: the palette still halves the error.
    assert_within_sog_bounds(splats, decoded, sh_rms=0.5 * 0.5)


@pytest.mark.parametrize("sh_degree", [1, 3])
def test_round_trip_real_shaped(tmp_path: Path, sh_degree: int) -> None:
    splats = scene_arrays(5000, sh_degree=sh_degree, seed=10 + sh_degree)
    write_sog(tmp_path / "s.sog", splats)
    # SH shared by nearby Gaussians (σ 0.15, noise 0.03): the palette keeps it to the noise.
    assert_within_sog_bounds(splats, read_sog(tmp_path / "s.sog"), sh_rms=0.05)


def test_layout_matches_the_format(tmp_path: Path) -> None:
    write_sog(tmp_path / "s.sog", random_arrays(1000, sh_degree=2))
    with zipfile.ZipFile(tmp_path / "s.sog") as bundle:
        meta = json.loads(bundle.read("meta.json"))
        names = set(bundle.namelist())
    assert meta["version"] == 2 and meta["count"] == 1000
    assert names == {"meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp",
                     "sh0.webp", "shN_centroids.webp", "shN_labels.webp"}  # fmt: skip
    assert len(meta["scales"]["codebook"]) == len(meta["sh0"]["codebook"]) == 256
    assert meta["shN"]["bands"] == 2 and meta["shN"]["count"] <= 1024
    assert image_size(1000) == (32, 32) and image_size(1_000_000) == (1000, 1000)


def test_splat_transform_decodes_ours_like_our_reader(tmp_path: Path) -> None:
    """Oracle: PlayCanvas's own reader turns our .sog into the same Gaussians as ours."""
    splats = scene_arrays(4000, sh_degree=3, seed=21)
    write_sog(tmp_path / "ours.sog", splats)
    splat_transform(tmp_path / "ours.sog", tmp_path / "back.ply")
    theirs = read_ply_arrays(tmp_path / "back.ply").splats
    ours = read_sog(tmp_path / "ours.sog")
    for name, a, b in zip(("means", "quats", "log_scales", "logits", "sh"), ours.columns(),
                          theirs.columns(), strict=True):  # fmt: skip
        assert np.allclose(a, b, rtol=1e-5, atol=1e-5), name
    assert_within_sog_bounds(splats, theirs, sh_rms=0.05)


def test_we_read_splat_transforms_sog(tmp_path: Path) -> None:
    """Oracle the other way: a .sog written by splat-transform decodes like its own reader."""
    from pipeline.formats.ply import write_ply_arrays

    write_ply_arrays(tmp_path / "in.ply", scene_arrays(3000, sh_degree=1, seed=22))
    splat_transform(tmp_path / "in.ply", tmp_path / "theirs.sog")
    splat_transform(tmp_path / "theirs.sog", tmp_path / "theirs.ply")
    ours = read_sog(tmp_path / "theirs.sog")
    theirs = read_ply_arrays(tmp_path / "theirs.ply").splats
    for a, b in zip(ours.columns(), theirs.columns(), strict=True):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-5)


def _rewrite(
    path: Path, out: Path, drop: str = "", meta_edit: dict[str, object] | None = None
) -> Path:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == drop:
                continue
            if name == "meta.json" and meta_edit is not None:
                meta = json.loads(data)
                meta.update(meta_edit)
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    return out


def test_bad_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.sog"
    write_sog(good, random_arrays(200, sh_degree=1))
    cases = {
        "truncated": (tmp_path / "cut.sog", "not a readable SOG zip"),
        "missing image": (_rewrite(good, tmp_path / "m.sog", drop="quats.webp"),
                          "names 'quats.webp', which the zip lacks"),
        "no meta": (_rewrite(good, tmp_path / "n.sog", drop="meta.json"), "no meta.json"),
        "version": (_rewrite(good, tmp_path / "v.sog", meta_edit={"version": 3}),
                    "version 3 is not supported"),
        "count": (_rewrite(good, tmp_path / "c.sog", meta_edit={"count": 10**6}),
                  "fewer than the 1000000 needed"),
        "not a zip": (tmp_path / "plain.sog", "not a readable SOG zip"),
    }  # fmt: skip
    (tmp_path / "cut.sog").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "plain.sog").write_bytes(b"hello")
    for case, (path, message) in cases.items():
        with pytest.raises(SogFormatError, match=message) as caught:
            read_sog(path)
        assert str(path) in str(caught.value), case


def test_non_finite_input_is_refused_and_nothing_written(tmp_path: Path) -> None:
    splats = random_arrays(50, sh_degree=0)
    splats.log_scales[7, 1] = np.inf
    with pytest.raises(ValueError, match="row 7"):
        write_sog(tmp_path / "s.sog", splats)
    assert list(tmp_path.iterdir()) == []
