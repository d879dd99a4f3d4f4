"""AppConfig: every stage's own settings class gathered in one model, with the per-camera
overrides resolved and each stage's settings filled from the top level, so that a stage never
sees AppConfig."""

from __future__ import annotations

import ipaddress
import socket
from functools import reduce
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from ipcam_analysis.config.cameras import CameraConfig, CameraSettings
from ipcam_analysis.config.dump import (
    database_url_secrets,
    masked,
    masked_database_url,
    masked_url,
)
from ipcam_analysis.detect import DETECTORS, DetectorConfig
from ipcam_analysis.detect.cascade import CascadeDetectorConfig
from ipcam_analysis.detect.local import LocalDetectorConfig, LocalModelSettings
from ipcam_analysis.detect.rekognition import RekognitionConfig
from ipcam_analysis.ingest.alarm import AlarmServerConfig
from ipcam_analysis.ingest.ftp import FtpServerConfig
from ipcam_analysis.ingest.http import HttpIngestConfig
from ipcam_analysis.ingest.onvif import OnvifSourceConfig
from ipcam_analysis.ingest.smtp import SmtpServerConfig
from ipcam_analysis.ingest.tls import TlsConfig
from ipcam_analysis.notify import AppriseConfig, EmailConfig, MqttConfig
from ipcam_analysis.notify.apprise import AppriseUrl, secrets_in_url
from ipcam_analysis.rules import BudgetConfig, CallLimits, FiltersConfig
from ipcam_analysis.rules.windows import TimeWindows
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.store.database import DatabaseSettings
from ipcam_analysis.store.retention import HistoryConfig
from ipcam_analysis.store.storage import StorageSettings
from ipcam_analysis.values import WatchedLabels


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


class AppConfig(StrictModel):
    """Everything the service needs; relative paths are already resolved against the config's folder."""

    new_labels_only: bool = False
    labels: list[str] = Field(default_factory=lambda: ["Person", "Vehicle", "Animal"])
    time_window: TimeWindows = None
    log_configuration_file: Path | None = None
    aws_region: str | None = None
    data_dir: Path = Path("data")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    # Names this machine's claims, its metrics and /healthz when several share the database;
    # each node needs its own (the host name by default).
    node_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    workers: int = Field(8, ge=1, le=128)  # analysis threads per worker process
    worker_processes: int = Field(1, ge=1, le=64)  # above 1: analysis in child processes
    ftp_server: FtpServerConfig = Field(default_factory=FtpServerConfig)
    http_ingest: HttpIngestConfig = Field(default_factory=HttpIngestConfig)
    smtp_server: SmtpServerConfig = Field(default_factory=SmtpServerConfig)
    alarm_server: AlarmServerConfig = Field(default_factory=AlarmServerConfig)
    email: EmailConfig = Field(default_factory=lambda: EmailConfig(transport="none"))
    notify: list[AppriseUrl] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    rekognition: RekognitionConfig = Field(default_factory=RekognitionConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    web: WebConfig = Field(default_factory=WebConfig)
    detector: DetectorConfig = Field(default_factory=RekognitionConfig)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_list(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must list at least one label, such as [Person, Vehicle]")
        if isinstance(value, str):
            return [value]
        return value

    @model_validator(mode="after")
    def _filled_keys_left_out(self) -> AppConfig:
        # A value written there would be silently replaced.
        for section, filled in FILLED_KEYS.items():
            settings = reduce(getattr, section.split("."), self)
            for key, source in filled.items():
                if key in settings.model_fields_set:
                    raise ValueError(f"{section}.{key} cannot be set: it is taken from {source}")
        return self

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
            if name not in self.ftp_server.users:
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

    @property
    def smtp_senders(self) -> dict[str, str]:
        """Sender address (lower case) → camera, for cameras that e-mail without logging in."""
        return {
            address.lower(): name
            for name, camera in self.cameras.items()
            for address in camera.smtp_from or ()
        }

    @property
    def serial_ids(self) -> dict[str, str]:
        """XMeye serial number → camera."""
        return {c.serial_id: name for name, c in self.cameras.items() if c.serial_id}

    @property
    def camera_names(self) -> list[str]:
        """Every configured camera: the FTP users are the cameras' identities for every source."""
        return list(self.ftp_server.users)

    def camera(self, name: str) -> CameraSettings:
        """The effective settings for uploads from this camera."""
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
        kinds = [self.detector.type, *(self.camera(n).detector for n in self.camera_names)]
        return list(dict.fromkeys(kinds))

    def detector_settings(self, kind: str | None = None) -> BaseModel:
        """The settings a detector of this kind (default: the configured one) is built from.

        Another kind than the configured one (a camera's own, a budget's local fallback,
        `detect --detector`) keeps what it shares with the configured one: the local model's
        settings of a cascade, the `rekognition:` section."""
        kind = kind or self.detector.type
        configured = self.detector
        rekognition = self.rekognition_settings()
        model = configured if isinstance(configured, LocalModelSettings) else LocalDetectorConfig()
        shared = model.model_dump(include=set(LocalModelSettings.model_fields))
        shared["model_cache_dir"] = model.model_cache_dir or self.data_dir / "models"
        if kind == "rekognition":
            return rekognition
        if kind == "local":
            own = configured if isinstance(configured, LocalDetectorConfig) else None
            return (own or LocalDetectorConfig()).model_copy(update=shared)
        if kind == "cascade":
            own = configured if isinstance(configured, CascadeDetectorConfig) else None
            return (own or CascadeDetectorConfig()).model_copy(
                update={**shared, "cloud": rekognition}
            )
        return configured if configured.type == kind else DETECTORS[kind].settings()

    def rekognition_settings(self) -> RekognitionConfig:
        """Rekognition's effective settings, for every reader (the detector, the alert picture,
        the usage page): the `rekognition:` section, with `detector: {type: rekognition, ...}`
        keys merged in, in aws_region."""
        settings = self.rekognition.model_copy(update={"region": self.aws_region})
        if isinstance(self.detector, RekognitionConfig):
            settings = settings.model_copy(update=_fields_set(self.detector))
        return settings

    def storage_settings(self) -> StorageSettings:
        """The `storage:` section, in aws_region unless it names its own."""
        return self.storage.model_copy(update={"region": self.storage.region or self.aws_region})

    def email_settings(self, camera: str | None = None) -> EmailConfig:
        """The e-mail settings, with the camera's own recipients when it has them."""
        own = self.cameras.get(camera) if camera else None
        email = self.email.model_copy(update={"region": self.aws_region})
        if own is not None and own.recipients is not None:
            email = email.model_copy(update={"recipients": list(own.recipients)})
        return email

    def notifier_settings(self, camera: str | None = None) -> dict[str, BaseModel]:
        """Each notifier kind's settings for a camera (None: the global ones): its own
        recipients and notify URLs, when it has them, replace the global ones."""
        own = self.cameras.get(camera) if camera else None
        email = self.email_settings(camera)
        urls = self.notify if own is None or own.notify is None else own.notify
        mqtt = self.mqtt.model_copy(
            update={
                "cameras": tuple(self.camera_names),
                "sensor_labels": self.sensor_labels,
                "dashboard_url": self.web.public_url if self.web.enabled else None,
                "camera_motion": self.alarm_server.enabled,
            }
        )
        # Already checked when the config was loaded: no second round of Apprise look-ups.
        apprise = AppriseConfig.model_construct(urls=tuple(urls))
        return {"email": email, "apprise": apprise, "mqtt": mqtt}

    @property
    def sensor_labels(self) -> tuple[str, ...]:
        """The labels with a binary sensor per camera; none in new-labels mode, where `labels`
        lists what to ignore."""
        return () if self.new_labels_only else tuple(self.labels)

    def source_settings(self) -> dict[str, BaseModel]:
        """Each enabled upload source's settings by kind: the FTP users are every source's
        camera identities, their files are kept under ftp_server.root_dir until analysed, and
        self-signed certificates are made in data_dir/tls."""
        ftp = self.ftp_server
        sources: dict[str, BaseModel] = {"ftp": ftp.model_copy(update={"tls": self._tls(ftp.tls)})}
        identities = {"users": ftp.users, "root_dir": ftp.root_dir}
        if self.http_ingest.enabled:
            sources["http"] = self.http_ingest.model_copy(update=identities)
        if self.smtp_server.enabled:
            sources["smtp"] = self.smtp_server.model_copy(
                update={
                    **identities,
                    "senders": self.smtp_senders,
                    "tls": self._tls(self.smtp_server.tls),
                }
            )
        onvif = {name: camera.onvif for name, camera in self.cameras.items() if camera.onvif}
        if onvif:
            sources["onvif"] = OnvifSourceConfig(cameras=onvif, root_dir=ftp.root_dir)
        return sources

    def _tls(self, tls: TlsConfig) -> TlsConfig:
        return tls.model_copy(update={"self_signed_dir": self.data_dir / "tls"})

    def event_source_settings(self) -> dict[str, BaseModel]:
        """Each enabled camera-event source's settings by kind."""
        if not self.alarm_server.enabled:
            return {}
        return {"alarm": self.alarm_server.model_copy(update={"serial_ids": self.serial_ids})}

    def secrets(self) -> list[str]:
        """Every secret value in the config, for the log filter."""
        found = [pw.get_secret_value() for pw in self.ftp_server.users.values()]
        if self.email.smtp and self.email.smtp.password:
            found.append(self.email.smtp.password.get_secret_value())
        if self.web.password_hash:
            found.append(self.web.password_hash.get_secret_value())
        if self.mqtt.password:
            found.append(self.mqtt.password.get_secret_value())
        if self.database.url:
            found += database_url_secrets(self.database.url)
        for camera in self.cameras.values():
            if camera.onvif is not None:
                found.append(camera.onvif.password.get_secret_value())
                if camera.onvif.snapshot_url is not None:
                    found.append(camera.onvif.snapshot_url.get_secret_value())
        camera_urls = [url for camera in self.cameras.values() for url in camera.notify or ()]
        for url in [*self.notify, *camera_urls]:
            found += secrets_in_url(url)
        return found

    def masked_dump(self) -> dict[str, Any]:
        """The effective config as plain data, secrets masked, for `--check-config`."""
        dumped = masked(self.model_dump(mode="python", exclude=_filled_keys_excluded()))
        # Where the defaults come from elsewhere in the config, the values in force.
        dumped["rekognition"] = masked(
            self.rekognition_settings().model_dump(exclude=set(FILLED_KEYS["rekognition"]))
        )
        dumped["detector"] = masked(
            self.detector_settings().model_dump(exclude=set(FILLED_KEYS["detector"]))
        )
        dumped["storage"]["region"] = self.storage_settings().region
        dumped["notify"] = [masked_url(url) for url in self.notify]
        if self.database.url:
            dumped["database"]["url"] = masked_database_url(self.database.url)
        for name, camera in self.cameras.items():
            if camera.notify is not None:
                dumped["cameras"][name]["notify"] = [masked_url(url) for url in camera.notify]
        return dumped


# Keys of the stages' settings classes that the configuration fills from elsewhere (by
# source_settings(), notifier_settings(), rekognition_settings(), ...), by section, with where
# they come from: they are not settings, so writing one is an error and --check-config leaves
# them out.
FILLED_KEYS: dict[str, dict[str, str]] = {
    "ftp_server.tls": {"self_signed_dir": "data_dir"},
    "http_ingest": {"users": "ftp_server.users", "root_dir": "ftp_server.root_dir"},
    "smtp_server": {
        "users": "ftp_server.users",
        "root_dir": "ftp_server.root_dir",
        "senders": "cameras.<name>.smtp_from",
    },
    "smtp_server.tls": {"self_signed_dir": "data_dir"},
    "alarm_server": {"serial_ids": "cameras.<name>.serial_id"},
    "email": {"region": "aws_region"},
    "mqtt": {
        "cameras": "ftp_server.users",
        "sensor_labels": "labels",
        "dashboard_url": "web.public_url",
        "camera_motion": "alarm_server.enabled",
    },
    "rekognition": {"region": "aws_region"},
    "detector": {"region": "aws_region", "cloud": "the rekognition section"},
}


def _filled_keys_excluded() -> dict[str, Any]:
    """FILLED_KEYS as model_dump's `exclude`: {"smtp_server": {"users": True, "tls": {...}}}."""
    exclude: dict[str, Any] = {}
    for section, filled in FILLED_KEYS.items():
        node = exclude
        for part in section.split("."):
            node = node.setdefault(part, {})
        node.update(dict.fromkeys(filled, True))
    return exclude


def _fields_set(settings: BaseModel) -> dict[str, Any]:
    """The keys a user wrote in a section, with their values (not the defaults)."""
    return {name: getattr(settings, name) for name in settings.model_fields_set - {"type"}}
