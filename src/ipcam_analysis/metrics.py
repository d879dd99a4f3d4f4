"""Counters for /metrics (Prometheus text format) and the health facts /healthz reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

DETECTOR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One registry per service, so several services in one process (tests) do not mix."""

    def __init__(self, queue_depth: Callable[[], float], node: str = "") -> None:
        """`node` labels every sample, so one Prometheus tells the nodes sharing a database
        apart (their queue depth is the shared queue's)."""
        self._node = node
        self.registry = CollectorRegistry()
        registry = self.registry
        self.uploads = Counter(
            "ipcam_uploads", "Uploads accepted from cameras", ["camera"], registry=registry
        )
        self.outcomes = Counter(
            "ipcam_outcomes",
            "Uploads processed, by outcome",
            ["camera", "outcome"],
            registry=registry,
        )
        self.alerts = Counter("ipcam_alerts", "Alerts raised", ["camera"], registry=registry)
        self.detector_seconds = Histogram(
            "ipcam_detector_seconds",
            "Time a detector took for one image",
            ["detector"],
            buckets=DETECTOR_BUCKETS,
            registry=registry,
        )
        self.cloud_calls = Counter(
            "ipcam_cloud_calls", "Paid cloud detector calls", ["camera"], registry=registry
        )
        self.notification_failures = Counter(
            "ipcam_notification_failures",
            "Notifications that failed (each attempt)",
            ["notifier"],
            registry=registry,
        )
        queue_gauge = Gauge(
            "ipcam_queue_depth", "Uploads waiting or in progress", registry=registry
        )
        queue_gauge.set_function(queue_depth)
        self.last_detector_success: float | None = None
        # The latest counts of each worker process (its own registry, sent over its pipe).
        self._processes: dict[int, list[Metric]] = {}
        self._processes_lock = threading.Lock()

    def detector_answered(
        self, detector: str, seconds: float, camera: str, cloud_calls: int
    ) -> None:
        self.detector_seconds.labels(detector).observe(seconds)
        if cloud_calls:
            self.cloud_calls.labels(camera).inc(cloud_calls)
        self.last_detector_success = time.time()

    def exposition(self) -> bytes:
        return generate_latest(self)  # type: ignore[arg-type]

    def counts(self) -> list[Metric]:
        """What a worker process sends to the main one: its counters and histograms (the
        queue depth is the main process's to tell)."""
        return [metric for metric in self.registry.collect() if metric.type != "gauge"]

    def counted_by_process(self, number: int, counts: list[Metric]) -> None:
        """A worker process's latest `counts()`, added to this process's own on /metrics (a
        replaced process starts again from zero, which Prometheus reads as a counter reset)."""
        with self._processes_lock:
            self._processes[number] = counts

    def collect(self) -> Iterator[Metric]:
        """The registry's metrics plus the worker processes', each sample with this node's
        label."""
        with self._processes_lock:
            others = [metric for counts in self._processes.values() for metric in counts]
        for metric in _added(self.registry.collect(), others):
            if self._node:
                metric.samples = [
                    sample._replace(labels={**sample.labels, "node": self._node})
                    for sample in metric.samples
                ]
            yield metric


def _added(own: Iterable[Metric], others: list[Metric]) -> Iterator[Metric]:
    """Each of `own` with the samples of the same name and labels in `others` added in (their
    creation times left out: the sum has none)."""
    for metric in own:
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for other in others:
            if other.name != metric.name:
                continue
            for sample in other.samples:
                if not sample.name.endswith("_created"):
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    totals[key] = totals.get(key, 0.0) + sample.value
        samples = []
        for sample in metric.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples.append(sample._replace(value=sample.value + totals.pop(key, 0.0)))
        for (name, labels), value in totals.items():  # labels only a worker process has seen
            samples.append(Sample(name, dict(labels), value))
        metric.samples = samples
        yield metric
