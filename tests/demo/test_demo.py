"""``make demo``: the scene as domain data, the progress lines, and the whole demo (slow)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import PROJECT_ROOT
from demo import describe, describe_metrics, scene_items
from tests.support.browser import chromium_page


def summary_of(tmp_path: Path) -> dict[str, Any]:
    """What ``python -m pipeline synthetic`` reports, over small stand-in files."""
    model = tmp_path / "refined" / "global" / "refined_sfm_combined"
    model.mkdir(parents=True)
    for name in ("cameras.bin", "frames.bin", "images.bin", "points3D.bin", "rigs.bin"):
        (model / name).write_bytes(name.encode())
    video = tmp_path / "datasets" / "2025-01-01_10-00-00" / "Frames.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"mp4")
    manifest = tmp_path / "refined" / "global" / "refined_manifest.json"
    manifest.write_text(json.dumps({"dataIDs": ["refined_scan_2025-01-01_10-00-00"]}))
    return {
        "video": str(video),
        "model": str(model),
        "manifest": str(manifest),
        "manifest_name": "refined_manifest_2025-01-02_03-04-05",
        "config": {"scan": "2025-01-01_10-00-00"},
    }


def test_the_scene_is_named_as_the_reconstruction_server_names_its_outputs(
    tmp_path: Path,
) -> None:
    items = scene_items(summary_of(tmp_path), "d-1", "http://127.0.0.1:9")
    ts = "_2025-01-02_03-04-05"
    assert [(name, data_type) for name, data_type, _ in items] == [
        ("dmt_recording_2025-01-01_10-00-00", "dmt_recording_mp4"),
        (f"colmap_cameras_bin{ts}", "colmap_cameras_bin"),
        (f"colmap_frames_bin{ts}", "colmap_frames_bin"),
        (f"colmap_images_bin{ts}", "colmap_images_bin"),
        (f"colmap_points3d_bin{ts}", "colmap_points3d_bin"),
        (f"colmap_rigs_bin{ts}", "colmap_rigs_bin"),
        (f"refined_manifest{ts}", "refined_manifest_json"),
    ]
    assert items[4][2] == b"points3D.bin"
    manifest = json.loads(items[-1][2])
    assert manifest["dataIDs"] == ["refined_scan_2025-01-01_10-00-00"]
    assert (manifest["domainID"], manifest["domainServerURL"]) == ("d-1", "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        ({}, "[  0%] leased"),
        ({"pct": 20, "stage": "inputs", "status": "materialized"}, "[ 20%] inputs materialized"),
        (
            {"pct": 57, "stage": "python", "status": "running", "pipeline_stage": "train",
             "step": 120, "total": 300, "loss": 0.04321, "gaussians": 5120, "eta_s": 19.6},
            "[ 57%] train running: step 120/300, loss 0.0432, 5120 Gaussians, ~20 s left",
        ),
        (
            {"progress": 100, "stage": "complete", "status": "succeeded"},
            "[100%] complete succeeded",
        ),
    ],
)  # fmt: skip
def test_progress_lines(progress: dict[str, Any], line: str) -> None:
    assert describe(progress) == line


def test_metrics_lines() -> None:
    event = {"level": "info", "stage": "python", "message": "training metrics",
             "psnr": 24.2804, "ssim": 0.85796, "views": 5, "step": 300}  # fmt: skip
    assert describe_metrics(event) == (
        "       evaluation at step 300: 5 held-out views, PSNR 24.28 dB, SSIM 0.858"
    )
    assert describe_metrics({"psnr": 9.5}) == "       evaluation: held-out views, PSNR 9.50 dB"


@pytest.mark.slow
def test_the_demo_runs_a_job_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "demo-output"
    command = [sys.executable, "-m", "demo", "--output", str(output), "--views", "12",
               "--size", "64x48", "--steps", "30"]  # fmt: skip
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    receipt = json.loads((output / "receipt.json").read_text())
    names = sorted(a["name"] for a in receipt["meta"]["artifacts"])
    ts = "_2025-01-02_03-04-05"
    bases = ("refined_splat", "refined_splat_preview_angle", "refined_splat_preview_top",
             "refined_splat_preview_video", "refined_splat_report",
             "refined_splat_sog")  # fmt: skip
    assert names == [f"{base}{ts}" for base in bases]
    files = sorted(p.name for p in output.iterdir())
    assert f"refined_splat{ts}.splat" in files and f"refined_splat_preview_video{ts}.mp4" in files
    assert f"refined_splat_sog{ts}.sog" in files and f"refined_splat_report{ts}.json" in files
    assert "[100%] complete succeeded" in result.stdout
    assert "held-out views, PSNR" in result.stdout


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.anyio
async def test_demo_serve_keeps_the_node_up_with_its_viewer_until_ctrl_c(
    demo_serving: tuple[subprocess.Popen[str], list[str]],
) -> None:
    child, lines = demo_serving
    url = next(line.split(": ", 1)[1] for line in lines if line.startswith("viewer: "))
    assert any(line.startswith("   viewer (live while it trains): ") for line in lines)
    async with httpx.AsyncClient(timeout=30) as http:
        scene = (await http.get(url.replace("/view", "/scene"))).json()
    assert scene["job"]["state"] == "succeeded" and scene["splat"]["count"] > 0
    async with chromium_page(640, 360) as page:
        await page.goto(url)
        await page.wait_for_function(
            "['ready', 'error'].includes(document.body.dataset.state)", timeout=120_000
        )
        shown = await page.evaluate("[document.body.dataset.state, document.body.dataset.splats]")
    assert shown == ["ready", str(scene["splat"]["count"])]
    assert child.poll() is None  # still serving
    child.send_signal(signal.SIGINT)  # Ctrl-C
    assert child.wait(timeout=90) == 0


@pytest.fixture
def demo_serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``python -m demo --serve`` on a tiny scene, read up to its "serving" line."""
    command = [sys.executable, "-m", "demo", "--output", str(tmp_path / "out"), "--views", "12",
               "--size", "64x48", "--steps", "30", "--no-previews", "--serve"]  # fmt: skip
    child = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("serving the viewer"):
                break
        assert lines and lines[-1].startswith("serving the viewer"), "\n".join(lines[-30:])
        yield child, lines
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
