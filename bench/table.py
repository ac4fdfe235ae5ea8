"""The table that ``make bench`` prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BenchRow", "BenchTable", "best_of"]


@dataclass
class BenchRow:
    """One measured figure.

    Attributes:
        name: what was measured, including its size (``"cpu forward 50k @1280x720"``).
        value: the figure.
        unit: its unit (``"s/frame"``, ``"Gaussians/s"``, ...).
        target: the target, or ``None``.
        lower_is_better: how to compare with the target.
        note: free text (scene, settings).
    """

    name: str
    value: float
    unit: str
    target: float | None = None
    lower_is_better: bool = True
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        met = self.value <= self.target if self.lower_is_better else self.value >= self.target
        return "met" if met else "MISSED"


@dataclass
class BenchTable:
    rows: list[BenchRow] = field(default_factory=list)

    def add(self, row: BenchRow) -> None:
        self.rows.append(row)
        print(f"  measured: {row.name}: {row.value:.4g} {row.unit}", flush=True)

    def render(self) -> str:
        header = ("benchmark", "value", "unit", "target", "verdict", "note")
        body = [
            (
                r.name,
                f"{r.value:.4g}",
                r.unit,
                "" if r.target is None else ("≤ " if r.lower_is_better else "≥ ") + f"{r.target:g}",
                r.verdict,
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=True)]
        lines = [
            " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            for row in [header, *body]
        ]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(lines)


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Fastest wall-clock time of ``fn()`` in seconds over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
