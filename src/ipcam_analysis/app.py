"""Wires the stages together (FTP → queue → workers → notifiers) and owns start and stop."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from ipcam_analysis.config import AppConfig, describe_time_windows
from ipcam_analysis.database import Database
from ipcam_analysis.detect import Detector, build_detector
from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.ftp import FtpIngest, remove_uploaded_file
from ipcam_analysis.memory import Memory
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.models import Upload
from ipcam_analysis.notify import (
    Notifier,
    build_email_notifier,
    build_mqtt_notifier,
    build_notifiers,
)
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.pipeline import Pipeline
from ipcam_analysis.queue import UploadQueue
from ipcam_analysis.store import EventStore
from ipcam_analysis.web import DashboardContext, WebServer, create_app
from ipcam_analysis.workers import WorkerPool

log = logging.getLogger(__name__)

DATABASE_FILE = "ipcam_analysis.db"
# Uploads whose queue row could not be written (a full disk), kept to retry; beyond this many,
# the oldest are left to the start-up scan of the upload folders.
MAX_UNQUEUED = 1000
EXAMPLE_PASSWORD = "change-this-password"  # the one in config.example.yaml


class Service:
    """The running product. `start()` returns once FTP is listening; `stop()` is graceful."""

    def __init__(
        self, config: AppConfig, make_detector: Callable[[str], Detector] | None = None
    ) -> None:
        """`make_detector(kind)` replaces the configured detectors (benchmarks use a fake one)."""
        self.config = config
        self.database = Database(config.data_dir / DATABASE_FILE)
        self.queue = UploadQueue(self.database)
        self.store = EventStore(self.database, config.data_dir, config.history)
        self.metrics = Metrics(self.queue.depth)
        email = build_email_notifier(config)
        # One MQTT connection for the whole service, shared by every camera's notifier list.
        self.mqtt = build_mqtt_notifier(config)
        hostname = socket.gethostname()
        errors = ErrorReporter(
            self.database,
            (lambda camera, cause: email.send_error(camera, cause, hostname)) if email else None,
            email.send_notice if email else None,
        )
        self._notifiers = {
            camera: self._build_notifiers(camera) for camera in config.ftp_server.users
        }
        self.pipeline = Pipeline(
            config,
            self.queue,
            self.store,
            Memory.open(self.database, config.budget),
            self.metrics,
            self._notifiers_for,
            errors,
            self._remove_upload if config.ftp_server.remove_files else None,
        )
        self.workers = WorkerPool(
            config.workers,
            self.queue,
            self.pipeline,
            make_detector or (lambda kind: build_detector(config, kind)),
            [config.camera(camera).detector for camera in config.ftp_server.users]
            or [config.detector.type],
        )
        ftp = config.ftp_server
        self.admission = UploadAdmission(
            ftp.max_queued_uploads,
            self.queue.recent_depth,
            ftp.min_free_mb,
            [ftp.root_dir, config.data_dir],
        )
        self._unqueued: deque[Upload] = deque(maxlen=MAX_UNQUEUED)
        self.ftp = FtpIngest(ftp, self._accept_upload, admission=self.admission)
        self.web: WebServer | None = None
        if config.web.enabled:
            dashboard = DashboardContext(
                config, self.store, self.queue, self.metrics, self._ftp_address
            )
            self.web = WebServer(create_app(dashboard), config.web.host, config.web.port)
        self._stopped = threading.Event()

    def _build_notifiers(self, camera: str) -> list[Notifier]:
        """A camera's own recipients and notifier URLs, when it has them, replace the global ones."""
        settings = self.config.camera(camera)
        config = self.config
        if settings.recipients is not None:
            email = config.email.model_copy(update={"recipients": list(settings.recipients)})
            config = config.model_copy(update={"email": email})
        if settings.notify is not None:
            config = config.model_copy(update={"notify": list(settings.notify)})
        return build_notifiers(config, self.mqtt)

    def _notifiers_for(self, camera: str) -> list[Notifier]:
        # A camera removed from the config but still queued falls back to the global notifiers.
        if camera not in self._notifiers:
            self._notifiers[camera] = self._build_notifiers(camera)
        return self._notifiers[camera]

    def _accept_upload(self, upload: Upload) -> None:
        """The FTP hook's whole job: one durable row, then back to serving cameras."""
        try:
            self.queue.put(upload)
        except Exception:
            # The camera already has its 226 and the file stays where it is: it is queued by a
            # later upload's hook once the database can be written, or by the next start's scan.
            self._unqueued.append(upload)
            raise
        self.metrics.uploads.labels(upload.camera).inc()
        self._queue_unqueued()

    def _queue_unqueued(self) -> None:
        """Retry the uploads an earlier hook could not queue, oldest first."""
        while self._unqueued:
            upload = self._unqueued[0]
            try:
                self.queue.put(upload)
            except Exception as exc:
                log.warning("Still cannot queue %d earlier upload(s): %s", len(self._unqueued), exc)
                return
            self._unqueued.popleft()
            self.metrics.uploads.labels(upload.camera).inc()
            log.info("Queued the earlier upload from %s: %s", upload.camera, upload.original_name)

    def _remove_upload(self, upload: Upload) -> None:
        remove_uploaded_file(upload.path, self.config.ftp_server.root_dir / upload.camera)

    def _ftp_address(self) -> tuple[str, int] | None:
        try:
            return self.ftp.address
        except RuntimeError:  # not started
            return None

    def start(self) -> None:
        self.queue.recover()
        self._enqueue_leftovers()
        if self.mqtt is not None:
            self.mqtt.start()
        self.workers.start()
        try:
            self.ftp.start()
        except UserError:
            self.workers.stop()
            raise
        log.info("Ready: %d worker(s), detector %s", self.config.workers, self.config.detector.type)
        for camera, password in self.config.ftp_server.users.items():
            if password.get_secret_value() == EXAMPLE_PASSWORD:
                log.warning("Camera %s still has the example config's password: change it", camera)
        if self.config.time_window:
            log.info("Time window: %s", describe_time_windows(self.config.time_window))
        if self.web is not None:
            self._start_dashboard(self.web)

    def _start_dashboard(self, web: WebServer) -> None:
        try:
            web.start()
        except UserError:
            self.ftp.stop()
            self.workers.stop()
            raise
        log.info("Dashboard: %s", web.url)
        # Printed too: whatever the log settings, the link is what a person starting it looks for.
        print(f"Dashboard: {web.url}", flush=True)

    def _enqueue_leftovers(self) -> None:
        """Queue files left in the upload folders: pyftpdlib answers 226 just before our hook, so
        a crash in between leaves an accepted upload on disk only. With `remove_files`, every
        file there is unhandled by definition."""
        settings = self.config.ftp_server
        if not settings.remove_files:
            return
        queued = self.queue.unfinished_paths()
        found = 0
        for camera in settings.users:
            home = settings.root_dir / camera
            for path in sorted(home.rglob("*")) if home.is_dir() else ():
                if path.is_file() and str(path) not in queued:
                    received = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
                    self.queue.put(
                        Upload(camera, path, received, "", path.relative_to(home).as_posix())
                    )
                    found += 1
        if found:
            log.info("Queued %d upload(s) found on disk from before the last shutdown", found)

    def stop(self) -> None:
        """Stop accepting, let workers finish what they hold; anything left resumes next start."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("Stopping: no new uploads; finishing the images in progress")
        if self.web is not None:
            self.web.stop()
        self.ftp.stop()
        self.workers.stop()
        if self.mqtt is not None:
            self.mqtt.close()
        self.database.close()
        log.info("Stopped")

    def run_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT (Ctrl+C), then stop gracefully."""
        stop_requested = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("Received %s", signal.Signals(signum).name)
            stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.start()
        try:
            while not stop_requested.wait(1.0):
                pass
        finally:
            self.stop()
