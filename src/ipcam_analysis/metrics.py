"""Counters for /metrics (Prometheus text format) and the health facts /healthz reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

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

    def detector_answered(
        self, detector: str, seconds: float, camera: str, cloud_calls: int
    ) -> None:
        self.detector_seconds.labels(detector).observe(seconds)
        if cloud_calls:
            self.cloud_calls.labels(camera).inc(cloud_calls)
        self.last_detector_success = time.time()

    def exposition(self) -> bytes:
        return generate_latest(self)

    def collect(self) -> Iterator[Metric]:
        """The registry's metrics, each sample with this node's label."""
        for metric in self.registry.collect():
            if self._node:
                metric.samples = [
                    sample._replace(labels={**sample.labels, "node": self._node})
                    for sample in metric.samples
                ]
            yield metric
