"""Wires the stages together (sources → queue → workers → notifiers, dashboard) and owns start
and stop. No stage work happens here."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import FrameType
from typing import Any, cast

from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import Detector
from ipcam_analysis.ingest import (
    EVENT_SOURCES,
    SOURCES,
    EventSourceContext,
    LoginThrottle,
    Poller,
    Source,
    SourceContext,
    UploadAdmission,
)
from ipcam_analysis.ingest.ftp import FtpServerConfig
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.notify import (
    HOW_TO_SWITCH_ON,
    MqttConfig,
    MqttNotifier,
    alerts_go_somewhere,
)
from ipcam_analysis.rules.windows import describe_time_windows
from ipcam_analysis.service.analysis import Analysis
from ipcam_analysis.service.instance_lock import DataDirLock
from ipcam_analysis.service.intake import Intake
from ipcam_analysis.service.logsetup import configure_logging
from ipcam_analysis.service.processes import AnalysisProcesses
from ipcam_analysis.service.watchdog import ServiceWatchdog
from ipcam_analysis.store import EventStore, open_database, open_storage
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import ROLES, CameraEvent
from ipcam_analysis.web import DashboardContext, WebServer, create_app

log = logging.getLogger(__name__)

EXAMPLE_PASSWORD = "change-this-password"  # the one in config.example.yaml
NO_ALERT_CHANNEL = (
    f"No alert channel is configured: alerts go nowhere (set one of {HOW_TO_SWITCH_ON})"
)


def build_service(
    config: AppConfig,
    *,
    roles: Iterable[str] = ROLES,
    console: bool = False,
    log_level: str = "INFO",
    make_detector: Callable[[str], Detector] | None = None,
) -> Service:
    """The service users run, logging and secret masking included: the CLI, the tests and the
    benchmarks all build it here. `make_detector(kind)` replaces the configured detectors."""
    configure_logging(config, console=console, level=log_level)
    return Service(config, make_detector=make_detector, roles=roles)


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
        self.metrics = Metrics(
            self.queue.depth, config.node_name, processes.metrics_folder if processes else None
        )
        self.analysis: Analysis | AnalysisProcesses | None = None
        if "worker" in self.roles:
            self.analysis = processes or Analysis(
                config, self.database, self.queue, self.store, self.metrics, make_detector
            )
        self._takes_camera_events = "ingest" in self.roles and bool(config.event_source_settings())
        self.intake: Intake | None = None
        self.sources: dict[str, Source] = {}  # the listeners
        self.pollers: dict[str, Poller] = {}  # the sources that reach out to cameras (ONVIF)
        if "ingest" in self.roles:
            self.intake = self._intake()
            self.sources, self.pollers = self._sources(self.intake)
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
                camera_links=self.camera_links,
            )
            self.web = WebServer(create_app(dashboard), config.web.host, config.web.port)
        self._stopped = threading.Event()
        self._lock = DataDirLock(config.data_dir)

    def _intake(self) -> Intake:
        """The queue's one way in for every source, behind the shared back-pressure check."""
        ftp = self.config.section(FtpServerConfig)
        admission = UploadAdmission(
            ftp.max_queued_uploads,
            self.queue.recent_depth,
            ftp.min_free_mb,
            [ftp.root_dir, self.config.data_dir],
        )
        notes = self.store.camera_events.take_recent if self._takes_camera_events else None
        return Intake(self.queue, self.storage, admission, self.metrics, notes)

    def _sources(self, intake: Intake) -> tuple[dict[str, Source], dict[str, Poller]]:
        """The listeners cameras send to and the pollers that reach out to cameras, each
        feeding the queue through the intake."""
        config = self.config
        cameras = config.camera_directory
        context = SourceContext(cameras, config.tls_dir, intake, LoginThrottle())
        sources: dict[str, Source] = {}
        pollers: dict[str, Poller] = {}
        for kind, settings in config.source_settings().items():
            built = SOURCES[kind].build(settings, context)
            if SOURCES[kind].kind == "poller":
                pollers[kind] = cast(Poller, built)
            else:
                sources[kind] = cast(Source, built)
        events = EventSourceContext(cameras, self._camera_event)
        for kind, settings in config.event_source_settings().items():
            sources[kind] = EVENT_SOURCES[kind].build(settings, events)
        return sources, pollers

    @property
    def ftp(self) -> Source:
        return self.sources["ftp"]

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
        for poller in self.pollers.values():
            poller.camera_reported(event)
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

    def camera_links(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Each poller's cameras' links (state, since, error), by the poller's kind."""
        return {kind: poller.camera_links() for kind, poller in self.pollers.items()}

    def start(self) -> None:
        """In this order: the data_dir lock, then the listeners bound; only then does anything
        speak for the service (MQTT) or take over work (claims, leftovers). A second instance,
        or one whose port is taken, leaves without a word to the broker or a change to the queue."""
        self._lock.acquire()
        try:
            self.storage.check()
            if self.storage.shared:
                log.info("Uploads in flight and snapshots are kept in %s", self.storage)
            ftp = self.config.section(FtpServerConfig)
            leftovers = (
                self.intake.find_leftovers(
                    ftp.root_dir, self.config.camera_names, homes=ftp.remove_files
                )
                if self.intake is not None
                else []
            )
            self._start_listeners()
        except BaseException:
            self._lock.release()
            raise
        if self.analysis is not None:
            # Claims this node held when it stopped go back now, not when their leases end.
            self.queue.recover(f"{self.config.node_name}/")
            self.analysis.start()
        if self.intake is not None:
            self.intake.queue_leftovers(leftovers)
        if not isinstance(self.analysis, Analysis):
            for publisher in self._event_publishers:
                publisher.start()
        self._log_ready()
        for camera, password in self.config.section(FtpServerConfig).users.items():
            if password.get_secret_value() == EXAMPLE_PASSWORD:
                log.warning("Camera %s still has the example config's password: change it", camera)
        if self.config.time_window:
            log.info("Time window: %s", describe_time_windows(self.config.time_window))

    def _start_listeners(self) -> None:
        """The sources, then the dashboard; if one cannot listen, those started stop again."""
        started: list[Source | Poller | WebServer] = []
        sources: list[Source | Poller] = [*self.sources.values(), *self.pollers.values()]
        try:
            for source in sources:
                source.start()
                started.append(source)
            if self.web is not None:
                self.web.start()
                started.append(self.web)
        except BaseException:
            for listener in started:
                listener.stop()
            raise
        if self.web is not None:
            _tell_console(logging.INFO, f"Dashboard: {self.web.url}")

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
        cameras: list[str | None] = [*config.camera_names, None]
        if self.analysis is not None and not alerts_go_somewhere(
            {camera: config.notifier_settings(camera) for camera in cameras}
        ):
            _tell_console(logging.WARNING, NO_ALERT_CHANNEL)

    def stop(self) -> None:
        """Stop accepting, let workers finish what they hold; anything left resumes next start."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("Stopping: no new uploads; finishing the images in progress")
        if self.web is not None:
            self.web.stop()
        sources: list[Source | Poller] = [*self.pollers.values(), *self.sources.values()]
        for source in sources:
            source.stop()
        if self.analysis is not None:
            self.analysis.stop()
        if not isinstance(self.analysis, Analysis):
            for publisher in self._event_publishers:
                publisher.close()
        self.database.close()
        self._lock.release()
        log.info("Stopped")

    def run_until_signalled(self, on_started: Callable[[], None] = lambda: None) -> bool:
        """Run until SIGTERM or SIGINT (Ctrl+C), then stop gracefully; `on_started()` once it
        has started. False when it stopped because a listener had closed."""
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
            on_started()
            while not stop_requested.wait(1.0):
                pass
        finally:
            watchdog.stop()
            self.stop()
        return watchdog.listener_down is None


def _tell_console(level: int, message: str) -> None:
    """Logged, and printed unless the log already shows on the console: whatever the log
    settings, a person starting the service sees it once."""
    log.log(level, "%s", message)
    consoles = (sys.stdout, sys.stderr)
    shown = any(
        isinstance(handler, logging.StreamHandler)
        and handler.stream in consoles
        and handler.level <= level
        for handler in logging.getLogger().handlers
    )
    if not (shown and log.isEnabledFor(level)):
        print(message, flush=True)


def _own_mqtt(config: AppConfig) -> list[MqttNotifier]:
    """An MQTT connection for the main process, beside the worker processes' own (a client id
    the user chose gets a suffix: a broker drops a connection whose id another one takes)."""
    settings = config.section(MqttConfig)
    if not settings.host:
        return []
    return [MqttNotifier(settings, replace(config.notifier_context, instance="events"))]
