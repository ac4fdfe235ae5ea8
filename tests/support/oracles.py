"""The dev-only Node.js oracles (package.json): PlayCanvas splat-transform and spz-js.

``make test`` installs them first (``make npm-deps``); run alone, a test installs them here with
``npm ci`` when npm exists. Tests skip, saying why, only where npm itself is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["REPO", "node_modules", "splat_transform", "spz_js_to_ply"]

REPO = Path(__file__).resolve().parents[2]
_SPZ_TO_PLY = Path(__file__).with_name("spz_to_ply.mjs")


def node_modules() -> Path:
    """The repository's installed ``node_modules`` (installing it if needed)."""
    folder = REPO / "node_modules"
    if (folder / ".bin" / "splat-transform").exists() and (folder / "spz-js").is_dir():
        return folder
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node not installed: the splat-transform and spz-js oracles need them")
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=REPO, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return folder


def splat_transform(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run PlayCanvas splat-transform (CPU) with ``args``; raises if it fails."""
    exe = node_modules() / ".bin" / "splat-transform"
    result = subprocess.run(
        [str(exe), "-q", "-w", "-g", "cpu", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"splat-transform failed: {result.stderr}{result.stdout}"
    return result


def spz_js_to_ply(spz: Path, ply: Path) -> None:
    """Decode ``spz`` with spz-js (``loadSpz``) and write what it decoded as a PLY."""
    node_modules()
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, str(_SPZ_TO_PLY), str(spz), str(ply)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"spz-js failed: {result.stderr}{result.stdout}"
