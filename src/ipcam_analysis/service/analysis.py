"""The analysis side of the service in one process: notifiers, the pipeline and its worker
threads (with `worker_processes` above 1, `processes` runs one of these in each child)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import replace

from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import Detector, build_detector
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify import EmailConfig, EmailNotifier, build_notifiers, distinct
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.service.pipeline import Pipeline
from ipcam_analysis.service.pipeline_settings import PipelineSettings, RetryPolicy
from ipcam_analysis.service.worker_pool import WorkerPool
from ipcam_analysis.store import CameraHistory, Database, EventStore
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import NotifyOutcome

log = logging.getLogger(__name__)

MakeDetector = Callable[[str], Detector]


class Analysis:
    """Worker threads claiming from the queue, each item through the pipeline to the notifiers."""

    def __init__(
        self,
        config: AppConfig,
        database: Database,
        queue: UploadQueue,
        store: EventStore,
        metrics: Metrics,
        make_detector: MakeDetector | None = None,
        instance: str = "",
    ) -> None:
        """`instance`: which worker process this is, when there are several ("" if one)."""
        memory = CameraHistory(database)
        cameras: list[str | None] = [*config.camera_names, None]
        self.notifiers = build_notifiers(
            {camera: config.notifier_settings(camera) for camera in cameras},
            replace(config.notifier_context, instance=instance),
        )
        pipeline = Pipeline(
            pipeline_settings(config),
            queue,
            store,
            memory,
            metrics,
            self.notifiers,
            _error_reporter(config, memory),
        )
        self.workers = WorkerPool(
            config.workers,
            queue,
            pipeline,
            make_detector
            or (
                lambda kind: build_detector(config.detector_settings(kind), config.detector_context)
            ),
            config.detector_kinds(),
        )

    def start(self) -> None:
        for notifier in distinct(self.notifiers):
            notifier.start()
        self.workers.start()

    def stop(self) -> None:
        self.workers.stop()
        for notifier in distinct(self.notifiers):
            notifier.close()


def pipeline_settings(config: AppConfig) -> PipelineSettings:
    """What the pipeline reads of the configuration, resolved once."""
    return PipelineSettings(
        cameras={name: config.camera(name) for name in config.camera_names},
        other_cameras=config.camera(""),
        budget=config.budget,
        retry=RetryPolicy(**config.retry.model_dump()),
        sensor_labels=config.sensor_labels,
        alert_resize_percent=config.rekognition_settings().image_resize_percent,
    )


def _error_reporter(config: AppConfig, memory: CameraHistory) -> ErrorReporter:
    email = EmailNotifier.from_settings(config.section(EmailConfig), config.aws_region)
    if email is None:
        return ErrorReporter(memory, None, None)
    hostname = socket.gethostname()

    def send_error(camera: str, cause: str, delivery: str | None) -> NotifyOutcome:
        return email.send_error(camera, cause, hostname, delivery)

    return ErrorReporter(memory, send_error, email.send_notice)
