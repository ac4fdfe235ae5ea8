"""Benchmarks: ``make bench`` (``python -m bench``) runs every ``bench/bench_*.py`` module.

Each module defines ``run(table: BenchTable) -> None`` and adds rows to the table. Speed lives
here, never in timed tests.
"""
