"""Wires the stages together (sources → queue → workers → notifiers, dashboard) and owns start
and stop. No stage work happens here."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import FrameType

from ipcam_analysis.analysis import Analysis, AnalysisProcesses
from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import Detector
from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest import (
    EVENT_SOURCES,
    SOURCES,
    LoginThrottle,
    Source,
    UploadAdmission,
)
from ipcam_analysis.ingest.leftovers import find_leftovers
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify import MqttConfig, MqttNotifier
from ipcam_analysis.queue import UploadQueue
from ipcam_analysis.rules.windows import describe_time_windows
from ipcam_analysis.store import EventStore, open_database, open_storage
from ipcam_analysis.store.uploads import forget_shared_copy, release_local_copy, share_upload
from ipcam_analysis.values import ROLES, CameraEvent, Upload
from ipcam_analysis.watchdog import ServiceWatchdog
from ipcam_analysis.web import DashboardContext, WebServer, create_app

log = logging.getLogger(__name__)

EXAMPLE_PASSWORD = "change-this-password"  # the one in config.example.yaml


class Service:
    """The running product. `start()` returns once the sources listen; `stop()` is graceful."""

    def __init__(
        self,
        config: AppConfig,
        make_detector: Callable[[str], Detector] | None = None,
        roles: Iterable[str] = ROLES,
    ) -> None:
        """`make_detector(kind)` replaces the configured detectors (benchmarks use a fake one)."""
        self.config = config
        self.roles = tuple(role for role in ROLES if role in set(roles))
        self.database = open_database(config.database, config.data_dir)
        processes = (
            AnalysisProcesses(config, config.worker_processes, make_detector)
            if config.worker_processes > 1 and "worker" in self.roles
            else None
        )
        self.queue = UploadQueue(
            self.database,
            owner=f"{config.node_name}/main",
            on_put=processes.wake if processes else None,
            lease_seconds=config.database.lease_seconds,
        )
        self.storage = open_storage(config.storage_settings(), config.data_dir)
        self.store = EventStore(self.database, self.storage, config.history)
        self.metrics = Metrics(self.queue.depth, config.node_name)
        self.analysis: Analysis | AnalysisProcesses | None = None
        if "worker" in self.roles:
            self.analysis = processes or Analysis(
                config, self.database, self.queue, self.store, self.metrics, make_detector
            )
        self.sources: dict[str, Source] = self._sources() if "ingest" in self.roles else {}
        self._takes_camera_events = "ingest" in self.roles and bool(config.event_source_settings())
        # Camera events are published where they arrive: through the analysis's own MQTT
        # connection when it runs in this process, else through one of this process's own.
        self._event_publishers = (
            [n for n in self.analysis.notifiers[None] if isinstance(n, MqttNotifier)]
            if isinstance(self.analysis, Analysis)
            else _own_mqtt(config)
            if self._takes_camera_events
            else []
        )
        self.web: WebServer | None = None
        if config.web.enabled:
            dashboard = DashboardContext(
                config,
                self.store,
                self.queue,
                self.metrics,
                self.listener_addresses,
                roles=self.roles,
            )
            self.web = WebServer(create_app(dashboard), config.web.host, config.web.port)
        self._stopped = threading.Event()

    def _sources(self) -> dict[str, Source]:
        """The listeners cameras send to, each feeding the queue through `_accept_upload`."""
        config = self.config
        ftp = config.ftp_server
        self.admission = UploadAdmission(
            ftp.max_queued_uploads,
            self.queue.recent_depth,
            ftp.min_free_mb,
            [ftp.root_dir, config.data_dir],
        )
        throttle = LoginThrottle()
        sources: dict[str, Source] = {
            kind: SOURCES[kind].implementation(
                settings, self._accept_upload, login_throttle=throttle, admission=self.admission
            )
            for kind, settings in config.source_settings().items()
        }
        for kind, settings in config.event_source_settings().items():
            sources[kind] = EVENT_SOURCES[kind].implementation(settings, self._camera_event)
        return sources

    @property
    def ftp(self) -> Source:
        return self.sources["ftp"]

    def _accept_upload(self, upload: Upload) -> int:
        """A source's hook: one committed row, whose id it returns (raises if the database
        cannot take it). A source acknowledges the upload to the camera only after this.
        What the camera reported itself just before (an alarm) goes with it as a note."""
        # Only with an alarm source: otherwise there is nothing to look up on this hot path (the
        # FTP hook runs in the server's one IO thread).
        reported = (
            self.store.camera_events.take_recent(upload.camera, upload.received_at.timestamp())
            if self._takes_camera_events
            else ""
        )
        if reported:
            upload = replace(upload, note="\n".join(filter(None, (reported, upload.note))))
        item_id = self._queue_upload(upload)
        self.metrics.uploads.labels(upload.camera).inc()
        return item_id

    def _queue_upload(self, upload: Upload) -> int:
        """With shared storage, the picture goes there first, then the row that names it;
        the file received here is removed only once both are done."""
        upload = share_upload(self.storage, upload)
        try:
            item_id = self.queue.put(upload)
        except Exception:
            forget_shared_copy(self.storage, upload)
            raise
        release_local_copy(upload)
        return item_id

    def _camera_event(self, event: CameraEvent) -> bool:
        """An event source's hook: record what a camera reported (known by its serial id, else
        by the address it uploads from) and publish it; False when the camera is unknown."""
        camera = event.camera or self.store.camera_events.camera_at_address(event.remote_ip)
        if not camera:
            return False
        event = replace(event, camera=camera)
        self.store.camera_events.record(event)
        log.info("Camera %s reported %s %s", camera, event.event, event.status)
        for publisher in self._event_publishers:
            publisher.publish_camera_event(event)
        return True

    def listener_addresses(self) -> dict[str, tuple[str, int] | None]:
        """Each source's (host, port), or None when it is not listening."""
        found: dict[str, tuple[str, int] | None] = {}
        for kind, source in self.sources.items():
            try:
                found[kind] = source.address
            except RuntimeError:  # not started
                found[kind] = None
        return found

    def start(self) -> None:
        self.storage.check()
        if self.storage.shared:
            log.info("Uploads in flight and snapshots are kept in %s", self.storage)
        if self.analysis is not None:
            # Claims this node held when it stopped go back now, not when their leases end.
            self.queue.recover(f"{self.config.node_name}/")
            self.analysis.start()
        if "ingest" in self.roles:
            self._enqueue_leftovers()
        if not isinstance(self.analysis, Analysis):
            for publisher in self._event_publishers:
                publisher.start()
        started: list[Source] = []
        try:
            for source in self.sources.values():
                source.start()
                started.append(source)
        except UserError:
            for source in started:
                source.stop()
            self._stop_analysis()
            raise
        self._log_ready()
        for camera, password in self.config.ftp_server.users.items():
            if password.get_secret_value() == EXAMPLE_PASSWORD:
                log.warning("Camera %s still has the example config's password: change it", camera)
        if self.config.time_window:
            log.info("Time window: %s", describe_time_windows(self.config.time_window))
        if self.web is not None:
            self._start_dashboard(self.web)

    def _log_ready(self) -> None:
        config = self.config
        if self.analysis is not None:
            log.info(
                "Ready: %d worker(s) in %d process(es), detector %s",
                config.workers,
                config.worker_processes,
                config.detector.type,
            )
        if self.roles != ROLES:
            log.info("Node %s runs: %s", config.node_name, ", ".join(self.roles))

    def _stop_analysis(self) -> None:
        if self.analysis is not None:
            self.analysis.stop()

    def _start_dashboard(self, web: WebServer) -> None:
        try:
            web.start()
        except UserError:
            for source in self.sources.values():
                source.stop()
            self._stop_analysis()
            raise
        log.info("Dashboard: %s", web.url)
        # Printed too: whatever the log settings, the link is what a person starting it looks for.
        print(f"Dashboard: {web.url}", flush=True)

    def _enqueue_leftovers(self) -> None:
        """Queue files left in the upload folders by a crash (with `remove_files`, every file
        there is unhandled by definition)."""
        settings = self.config.ftp_server
        if not settings.remove_files:
            return
        queued = self.queue.unfinished_paths()
        found = 0
        for upload in find_leftovers(settings.root_dir, self.config.camera_names, queued):
            try:
                self._queue_upload(upload)
            except OSError as exc:  # shared storage unreachable: the file waits for next start
                log.warning("Cannot queue %s found on disk: %s", upload.path, exc)
                continue
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
        for source in self.sources.values():
            source.stop()
        self._stop_analysis()
        if not isinstance(self.analysis, Analysis):
            for publisher in self._event_publishers:
                publisher.close()
        self.database.close()
        log.info("Stopped")

    def run_until_signalled(self) -> bool:
        """Run until SIGTERM or SIGINT (Ctrl+C), then stop gracefully; False when it stopped
        because a listener had closed."""
        stop_requested = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("Received %s", signal.Signals(signum).name)
            stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.start()
        watchdog = ServiceWatchdog(self.listener_addresses, on_listener_down=stop_requested.set)
        watchdog.start()
        try:
            while not stop_requested.wait(1.0):
                pass
        finally:
            watchdog.stop()
            self.stop()
        return watchdog.listener_down is None


def _own_mqtt(config: AppConfig) -> list[MqttNotifier]:
    """An MQTT connection for the main process, beside the worker processes' own (a client id
    the user chose gets a suffix: a broker drops a connection whose id another one takes)."""
    settings = config.notifier_settings()["mqtt"]
    assert isinstance(settings, MqttConfig)
    if not settings.host:
        return []
    if settings.client_id:
        settings = settings.model_copy(update={"client_id": f"{settings.client_id}-events"})
    return [MqttNotifier(settings)]
