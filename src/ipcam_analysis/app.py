"""Wires the stages together (FTP → queue → workers → notifiers) and owns start and stop."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from datetime import datetime
from types import FrameType

from ipcam_analysis.config import AppConfig, describe_time_windows
from ipcam_analysis.database import Database
from ipcam_analysis.detect import build_detector
from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.ftp import FtpIngest, remove_uploaded_file
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.models import Upload
from ipcam_analysis.notify import build_email_notifier, build_notifiers
from ipcam_analysis.notify.errors import ErrorReporter
from ipcam_analysis.pipeline import Pipeline
from ipcam_analysis.queue import UploadQueue
from ipcam_analysis.store import EventStore
from ipcam_analysis.workers import WorkerPool

log = logging.getLogger(__name__)

DATABASE_FILE = "ipcam_analysis.db"


class Service:
    """The running product. `start()` returns once FTP is listening; `stop()` is graceful."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.database = Database(config.data_dir / DATABASE_FILE)
        self.queue = UploadQueue(self.database)
        self.store = EventStore(self.database, config.data_dir, config.history)
        self.metrics = Metrics(self.queue.depth)
        email = build_email_notifier(config)
        hostname = socket.gethostname()
        errors = ErrorReporter(
            self.database,
            (lambda camera, cause: email.send_error(camera, cause, hostname)) if email else None,
        )
        self.pipeline = Pipeline(
            config,
            self.queue,
            self.store,
            self.metrics,
            build_notifiers(config),
            errors,
            self._remove_upload if config.ftp_server.remove_files else None,
        )
        self.workers = WorkerPool(
            config.workers, self.queue, self.pipeline, lambda: build_detector(config)
        )
        self.ftp = FtpIngest(config.ftp_server, self._accept_upload)
        self._stopped = threading.Event()

    def _accept_upload(self, upload: Upload) -> None:
        """The FTP hook's whole job: one durable row, then back to serving cameras."""
        self.queue.put(upload)
        self.metrics.uploads.labels(upload.camera).inc()

    def _remove_upload(self, upload: Upload) -> None:
        remove_uploaded_file(upload.path, self.config.ftp_server.root_dir / upload.camera)

    def start(self) -> None:
        self.queue.recover()
        self._enqueue_leftovers()
        self.workers.start()
        settings = self.config.ftp_server
        try:
            self.ftp.start()
        except UserError:
            self.workers.stop()
            raise
        host, port = self.ftp.address
        log.info(
            "FTP server listening on %s:%d for %d camera(s); %d worker(s), detector %s",
            host,
            port,
            len(settings.users),
            self.config.workers,
            self.config.detector.type,
        )
        if self.config.time_window:
            log.info("Time window: %s", describe_time_windows(self.config.time_window))

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
        self.ftp.stop()
        self.workers.stop()
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
