"""Prometheus metrics of the node (``GET /metrics``).

Each app owns its registry (tests build many apps in one process). Exposed:

- ``splatter_jobs{state}``: jobs in the store by state (read from SQLite at scrape time);
- ``splatter_jobs_finished_total{state}``: jobs this process finished, by terminal state;
- ``splatter_stage_duration_seconds{stage}``: runner steps (``inputs``, ``python``,
  ``upload``, ``job``) and pipeline stages (``pipeline_frames``, ``pipeline_train``, ...);
- ``splatter_bytes_downloaded_total`` / ``splatter_bytes_uploaded_total``: domain data moved;
- ``splatter_training_steps_total``: optimisation steps the pipeline children reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "NodeMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STAGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class _JobsByState(Collector):
    def __init__(self, counts: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("splatter_jobs", "Jobs in the store by state", labels=["state"])
        for state, count in self._counts():
            family.add_metric([state], count)
        yield family


class NodeMetrics:
    """The node's counters and histograms, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stage = Histogram(
            "splatter_stage_duration_seconds",
            "Duration of runner steps and pipeline stages",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self._downloaded = Counter(
            "splatter_bytes_downloaded",
            "Bytes downloaded from domain servers",
            registry=self.registry,
        )
        self._uploaded = Counter(
            "splatter_bytes_uploaded", "Bytes uploaded to domain servers", registry=self.registry
        )
        self._steps = Counter(
            "splatter_training_steps",
            "Training steps reported by pipeline children",
            registry=self.registry,
        )
        self._finished = Counter(
            "splatter_jobs_finished",
            "Jobs finished by this process",
            ["state"],
            registry=self.registry,
        )

    def watch_jobs(self, counts: Callable[[], Iterable[tuple[str, int]]]) -> None:
        """Exports ``splatter_jobs{state}`` from ``(state, count)`` pairs at every scrape."""
        self.registry.register(_JobsByState(counts))

    def observe_stage(self, stage: str, seconds: float) -> None:
        self._stage.labels(stage=stage).observe(seconds)

    def add_downloaded(self, count: int) -> None:
        self._downloaded.inc(count)

    def add_uploaded(self, count: int) -> None:
        self._uploaded.inc(count)

    def add_training_steps(self, count: int) -> None:
        if count > 0:
            self._steps.inc(count)

    def job_finished(self, state: str) -> None:
        self._finished.labels(state=state).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
