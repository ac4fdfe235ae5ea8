"""``python -m bench [NAME ...]``: run the benchmarks (all, or those whose module name matches)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

# As in pipeline/__main__.py: sleeping OpenMP workers, set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import bench
from bench.table import BenchTable


def main(argv: list[str]) -> int:
    table = BenchTable()
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    selected = [n for n in names if not argv or any(a in n for a in argv)]
    for name in selected:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").run(table)
    print()
    print(table.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
