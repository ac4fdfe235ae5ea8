"""What the demo prints: progress lines as DMS receives them, evaluation lines, artifacts."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["describe", "describe_metrics", "print_artifacts", "say"]


def say(text: str, stream: TextIO = sys.stdout) -> None:
    """Prints one line at once (the demo's output is followed live)."""
    print(text, file=stream, flush=True)


def describe(progress: Any) -> str:
    """One line for a progress JSON value (protocol §3.7 shapes)."""
    if not isinstance(progress, dict) or not progress:
        return "[  0%] leased"
    pct = progress.get("pct", progress.get("progress", 0))
    stage = progress.get("pipeline_stage") or progress.get("stage", "")
    text = f"[{pct:>3}%] {stage} {progress.get('status', '')}".rstrip()
    if "step" in progress:
        text += f": step {progress['step']}/{progress.get('total', '?')}"
        if isinstance(progress.get("loss"), int | float):
            text += f", loss {progress['loss']:.4f}"
        if "gaussians" in progress:
            text += f", {progress['gaussians']} Gaussians"
        if isinstance(progress.get("eta_s"), int | float):
            text += f", ~{progress['eta_s']:.0f} s left"
    return text


def describe_metrics(event: dict[str, Any]) -> str:
    """One line for a ``training metrics`` job event (held-out PSNR in dB / SSIM)."""
    parts = [f"{event['views']} held-out views" if "views" in event else "held-out views"]
    if isinstance(event.get("psnr"), int | float):
        parts.append(f"PSNR {event['psnr']:.2f} dB")
    if isinstance(event.get("ssim"), int | float):
        parts.append(f"SSIM {event['ssim']:.3f}")
    step = f" at step {event['step']}" if "step" in event else ""
    return f"       evaluation{step}: " + ", ".join(parts)


def print_artifacts(fetched: Sequence[tuple[str, str, int, Path]]) -> None:
    """One aligned line per ``(name, data_type, size in bytes, local path)``."""
    width = max(len(name) for name, *_ in fetched)
    for name, data_type, size, path in fetched:
        say(f"  {name:<{width}}  {data_type:<20}  {size:>10,} B  {path}")
