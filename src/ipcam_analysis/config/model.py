"""AppConfig: the global settings, a section for each stage plugin generated from the
registries, and the cameras' overrides. At load, each camera's settings and each stage's settings
in force are resolved once; the stages are built from them and a small context each, never
from AppConfig."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    create_model,
    field_validator,
    model_validator,
)

from ipcam_analysis.config.cameras import CameraConfig, with_global_sections
from ipcam_analysis.config.dump import secrets_in, shown
from ipcam_analysis.detect import (
    DetectorConfig,
    DetectorContext,
    DetectorSettings,
    settings_by_kind,
)
from ipcam_analysis.detect.rekognition import RekognitionConfig
from ipcam_analysis.ingest import EVENT_SOURCES, SOURCES, CameraDirectory
from ipcam_analysis.ingest.ftp import FtpServerConfig
from ipcam_analysis.notify import NOTIFIERS, NotifierContext
from ipcam_analysis.rules import BudgetConfig, CallLimits, FiltersConfig
from ipcam_analysis.rules.camera import CameraSettings
from ipcam_analysis.rules.windows import TimeWindows
from ipcam_analysis.settings import ConfigPath, Plugin, StrictModel
from ipcam_analysis.store.database import DatabaseSettings
from ipcam_analysis.store.retention import HistoryConfig
from ipcam_analysis.store.storage import StorageSettings
from ipcam_analysis.values import WatchedLabels

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class WebConfig(StrictModel):
    """The dashboard and JSON API, in the same process."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)  # 0: any free port (tests)
    username: str | None = None
    password_hash: SecretStr | None = None
    # The address people (and MQTT/Home Assistant) use to open the dashboard, for links.
    public_url: str | None = None

    @model_validator(mode="after")
    def _login_complete(self) -> WebConfig:
        if bool(self.username) != bool(self.password_hash):
            raise ValueError(
                "set both username and password_hash (see `ipcam-analysis hash-password`)"
            )
        if self.enabled and not self.password_hash and not _is_loopback(self.host):
            raise ValueError(
                f"the dashboard would be open to the network on {self.host} without a password: "
                "set username and password_hash, or host: 127.0.0.1"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RetryConfig(StrictModel):
    first_delay_seconds: float = Field(2, gt=0)
    max_delay_seconds: float = Field(60, gt=0)
    give_up_after_hours: float = Field(24, gt=0)
    error_email_after_attempts: int = Field(5, ge=1)


class _GlobalSettings(StrictModel):
    """The keys before the stages' sections (the order `--check-config` shows them in)."""

    new_labels_only: bool = False
    labels: list[str] = Field(default_factory=lambda: ["Person", "Vehicle", "Animal"])
    time_window: TimeWindows = None
    log_configuration_file: ConfigPath | None = None
    aws_region: str | None = None
    data_dir: ConfigPath = Field(Path("data"), validate_default=True)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    # Names this machine's claims, its metrics and /healthz when several share the database;
    # each node needs its own (the host name by default).
    node_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    # Analysis threads per worker process. A cloud call waits 0.2-0.6 s on the network: 8 threads
    # capped a process at 40 alerts/s with a 0.2 s cloud; local detectors share one model.
    workers: int = Field(16, ge=1, le=128)
    worker_processes: int = Field(1, ge=1, le=64)  # above 1: analysis in child processes

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_list(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must list at least one label, such as [Person, Vehicle]")
        if isinstance(value, str):
            return [value]
        return value


# Every plugin configured at the top level, by its section's name (a poller's are per camera).
_PLUGINS: list[Plugin[Any, Any, Any]] = [
    *SOURCES.values(),
    *EVENT_SOURCES.values(),
    *NOTIFIERS.values(),
]
TOP_LEVEL_PLUGINS = {plugin.section: plugin for plugin in _PLUGINS if plugin.kind != "poller"}
if TYPE_CHECKING:
    _StageSections = _GlobalSettings
else:
    _StageSections = create_model(
        "_StageSections",
        __base__=_GlobalSettings,
        __module__=__name__,
        **{
            section: (plugin.settings, Field(default_factory=plugin.settings))
            for section, plugin in TOP_LEVEL_PLUGINS.items()
        },
    )


class AppConfig(_StageSections):
    """Everything the service needs; relative paths are already resolved against the config's
    folder. A stage's section is `section(ItsSettingsClass)`."""

    rekognition: RekognitionConfig = Field(default_factory=RekognitionConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    web: WebConfig = Field(default_factory=WebConfig)
    detector: DetectorConfig = Field(default_factory=RekognitionConfig)

    # Resolved once, when the configuration is validated.
    _cameras: dict[str, CameraSettings] = PrivateAttr(default_factory=dict)
    _detectors: dict[str, DetectorSettings] = PrivateAttr(default_factory=dict)
    _notifiers: dict[str | None, dict[str, BaseModel]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _camera_sections_over_global(cls, data: Any) -> Any:
        return with_global_sections(data)

    @model_validator(mode="after")
    def _rekognition_in_one_place(self) -> AppConfig:
        # `detector: {type: rekognition, ...}` keys are merged into the `rekognition:` section;
        # a key written differently in both would leave the user guessing which one holds.
        if isinstance(self.detector, RekognitionConfig):
            section = _fields_set(self.rekognition)
            for key, value in _fields_set(self.detector).items():
                if key in section and section[key] != value:
                    raise ValueError(
                        f"detector.{key} is {value} but rekognition.{key} is {section[key]}: "
                        "write it in one place (the rekognition section)"
                    )
        return self

    @model_validator(mode="after")
    def _cameras_exist(self) -> AppConfig:
        for name in self.cameras:
            if name not in self.camera_names:
                raise ValueError(
                    f"cameras.{name}: there is no FTP user {name!r} in ftp_server.users"
                )
        # A sender address or serial number must name one camera only.
        owners: dict[tuple[str, str], str] = {}
        for name, camera in self.cameras.items():
            values = [("smtp_from", address.lower()) for address in camera.smtp_from or ()]
            values += [("serial_id", camera.serial_id)] if camera.serial_id else []
            for key, value in values:
                other = owners.setdefault((key, value), name)
                if other != name:
                    raise ValueError(f"cameras.{name}.{key}: {value} is camera {other}'s already")
        return self

    @model_validator(mode="after")
    def _resolve(self) -> AppConfig:
        """Each camera's settings and each stage's settings in force, once."""
        self._cameras = {name: self._camera_in_force(name) for name in self.camera_names}
        rekognition = self.rekognition
        if isinstance(self.detector, RekognitionConfig):
            rekognition = rekognition.model_copy(update=_fields_set(self.detector))
        self._detectors = settings_by_kind(self.detector, rekognition, self.data_dir / "models")
        cameras: list[str | None] = [*self.camera_names, None]
        self._notifiers = {camera: self._notifiers_in_force(camera) for camera in cameras}
        return self

    def section(self, settings_class: type[SettingsT]) -> SettingsT:
        """A stage's top-level section, by its settings class (`section(FtpServerConfig)`)."""
        (name,) = [n for n, p in TOP_LEVEL_PLUGINS.items() if p.settings is settings_class]
        found = getattr(self, name)
        assert isinstance(found, settings_class)
        return found

    @property
    def camera_names(self) -> list[str]:
        """Every configured camera: the FTP users are the cameras' identities for every source."""
        return list(self.section(FtpServerConfig).users)

    def camera(self, name: str) -> CameraSettings:
        """The effective settings for uploads from this camera (the global ones for a name
        that is no camera's, such as a picture's analysed by a tool)."""
        return self._cameras.get(name) or self._camera_in_force(name)

    def _camera_in_force(self, name: str) -> CameraSettings:
        own = self.cameras.get(name) or CameraConfig()

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        windows = pick(own.time_window, self.time_window)
        return CameraSettings(
            name=name,
            labels=tuple(pick(own.labels, self.labels)),
            new_labels_only=pick(own.new_labels_only, self.new_labels_only),
            time_windows=windows or None,
            detector=pick(own.detector, self.detector.type),
            min_confidence_percent=own.min_confidence_percent,
            filters=self.filters.merged(own.filters),
            budget=own.budget or CallLimits(),
        )

    def watched_labels(self) -> WatchedLabels:
        """What the global `labels` watch: for the tools, which analyse pictures of no camera."""
        return WatchedLabels(tuple(self.labels), self.new_labels_only)

    def detector_kinds(self) -> list[str]:
        """The kinds the cameras use, the configured one first."""
        kinds = [self.detector.type, *(camera.detector for camera in self._cameras.values())]
        return list(dict.fromkeys(kinds))

    def detector_settings(self, kind: str | None = None) -> DetectorSettings:
        """The settings a detector of this kind (default: the configured one) is built from:
        another kind than the configured one (a camera's own, a budget's local fallback,
        `detect --detector`) keeps what it shares with it (see detect.settings_by_kind)."""
        return self._detectors[kind or self.detector.type]

    def rekognition_settings(self) -> RekognitionConfig:
        """Rekognition's settings in force, for every reader (the detector, the alert picture,
        the usage page): the `rekognition:` section, with `detector: {type: rekognition, ...}`
        keys merged in."""
        settings = self._detectors["rekognition"]
        assert isinstance(settings, RekognitionConfig)
        return settings

    @property
    def detector_context(self) -> DetectorContext:
        return DetectorContext(self.aws_region, self.rekognition_settings())

    def storage_settings(self) -> StorageSettings:
        """The `storage:` section, in aws_region unless it names its own."""
        return self.storage.model_copy(update={"region": self.storage.region or self.aws_region})

    def notifier_settings(self, camera: str | None = None) -> dict[str, BaseModel]:
        """Each notifier kind's settings for a camera (None: the global ones)."""
        return self._notifiers.get(camera) or self._notifiers[None]

    def _notifiers_in_force(self, camera: str | None) -> dict[str, BaseModel]:
        own = self.cameras.get(camera) if camera else None
        found: dict[str, BaseModel] = {}
        for kind, plugin in NOTIFIERS.items():
            section = getattr(own, plugin.section, None) if plugin.kind == "per_camera" else None
            found[kind] = section if section is not None else getattr(self, plugin.section)
        if own is not None and own.recipients is not None:
            found["email"] = found["email"].model_copy(update={"recipients": own.recipients})
        return found

    @property
    def notifier_context(self) -> NotifierContext:
        return NotifierContext(
            cameras=tuple(self.camera_names),
            sensor_labels=self.sensor_labels,
            dashboard_url=self.web.public_url if self.web.enabled else None,
            camera_motion=bool(self.event_source_settings()),
            region=self.aws_region,
        )

    @property
    def sensor_labels(self) -> tuple[str, ...]:
        """The labels with a binary sensor per camera; none in new-labels mode, where `labels`
        lists what to ignore."""
        return () if self.new_labels_only else tuple(self.labels)

    @property
    def camera_directory(self) -> CameraDirectory:
        """The cameras as every source knows them: their logins and the folder their uploads
        wait in (ftp_server), and what else tells them apart (cameras.<name>)."""
        ftp = self.section(FtpServerConfig)
        cameras = self.cameras.items()
        return CameraDirectory(
            passwords=ftp.users,
            root_dir=ftp.root_dir,
            senders={a.lower(): name for name, c in cameras for a in c.smtp_from or ()},
            serial_ids={c.serial_id: name for name, c in cameras if c.serial_id},
        )

    @property
    def tls_dir(self) -> Path:
        """Where listeners make their self-signed certificates."""
        return self.data_dir / "tls"

    def source_settings(self) -> dict[str, Any]:
        """Each upload source that runs, by kind: a listener's section (when enabled), a
        poller's {camera: section} (when some camera has one)."""
        return self._running(SOURCES)

    def event_source_settings(self) -> dict[str, Any]:
        """Each camera-event source that runs, by kind."""
        return self._running(EVENT_SOURCES)

    def _running(self, registry: Mapping[str, Plugin[Any, Any, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for kind, plugin in registry.items():
            if plugin.kind == "poller":
                cameras = {
                    name: own
                    for name, camera in self.cameras.items()
                    if (own := getattr(camera, plugin.section)) is not None
                }
                if cameras:
                    found[kind] = cameras
            elif getattr(self, plugin.section).enabled:
                found[kind] = getattr(self, plugin.section)
        return found

    def secrets(self) -> list[str]:
        """Every secret value in the config, for the log filter."""
        return secrets_in(self)

    def masked_dump(self) -> dict[str, Any]:
        """The effective config as plain data, secrets masked, for `--check-config`."""
        dumped: dict[str, Any] = shown(self)
        # Where the values in force come from elsewhere in the config.
        dumped["rekognition"] = shown(self.rekognition_settings())
        dumped["detector"] = shown(self.detector_settings())
        dumped["storage"]["region"] = self.storage_settings().region
        return dumped


def _fields_set(settings: BaseModel) -> dict[str, Any]:
    """The keys a user wrote in a section, with their values (not the defaults)."""
    return {name: getattr(settings, name) for name in settings.model_fields_set - {"type"}}
