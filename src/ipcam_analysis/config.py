"""The configuration: one typed model, loaded once from YAML, compatible with the original's config.yaml."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ipcam_analysis.config_messages import describe_validation_error
from ipcam_analysis.detect import DetectorConfig, RekognitionDetectorConfig
from ipcam_analysis.errors import ConfigError
from ipcam_analysis.notify.apprise import AppriseUrl, secrets_in_url
from ipcam_analysis.notify.mqtt import MqttConfig

__all__ = ["AppConfig", "ConfigError", "load_config"]


class StrictModel(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_clock_time(value: Any) -> time:
    """`'5:00'`, `'05:07'`, or the integer YAML 1.1 makes of an unquoted `5:00` (5*60 = 300)."""
    if isinstance(value, time):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a time such as '05:00'")
    if isinstance(value, int):
        # Unquoted H:MM is read by YAML as base-60 minutes.
        if not 0 <= value < 24 * 60:
            raise ValueError(f"{value} is not a time of day; write it quoted, such as '05:00'")
        return time(value // 60, value % 60)
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            hours, minutes = (int(p) for p in parts)
            if 0 <= hours < 24 and 0 <= minutes < 60:
                return time(hours, minutes)
    raise ValueError(f"{value!r} is not a time of day in HH:MM form, such as '05:00'")


ClockTime = Annotated[time, Field(description="HH:MM, server local time")]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(StrictModel):
    """When uploads are analysed; outside it they are recorded and dropped."""

    start: ClockTime
    end: ClockTime
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = WEEKDAYS

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> time:
        return parse_clock_time(value)

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [str(day).strip().lower()[:3] for day in value] if isinstance(value, list) else value

    def contains(self, now: datetime) -> bool:
        """Inclusive of the whole end minute; wraps past midnight; start == end means all day.

        After midnight, a window that wrapped belongs to the day it started on."""
        minute = (now.hour, now.minute)
        start = (self.start.hour, self.start.minute)
        end = (self.end.hour, self.end.minute)
        today = WEEKDAYS[now.weekday()]
        yesterday = WEEKDAYS[(now.weekday() - 1) % 7]
        if start == end:
            return today in self.days
        if start < end:
            return start <= minute <= end and today in self.days
        return (minute >= start and today in self.days) or (
            minute <= end and yesterday in self.days
        )

    def describe(self) -> str:
        days = "" if self.days == WEEKDAYS else " " + ",".join(self.days)
        return f"[{self.start:%H:%M}, {self.end:%H:%M}]{days}"


def _as_window_list(value: Any) -> Any:
    """`time_window` may be one window (the original's form) or a list of them."""
    if value is None or isinstance(value, list | tuple):
        return value
    return [value]


TimeWindows = Annotated[tuple[TimeWindow, ...] | None, BeforeValidator(_as_window_list)]


def in_time_windows(windows: tuple[TimeWindow, ...] | None, now: datetime) -> bool:
    return not windows or any(window.contains(now) for window in windows)


def describe_time_windows(windows: tuple[TimeWindow, ...]) -> str:
    return " or ".join(window.describe() for window in windows)


class FtpServerConfig(StrictModel):
    root_dir: Path = Path("ftp")
    host: str = "0.0.0.0"
    port: int = Field(2121, ge=0, le=65535)  # 0: any free port (tests)
    remove_files: bool = True
    users: dict[str, SecretStr] = Field(default_factory=dict)
    passive_ports: tuple[int, int] | None = None
    masquerade_address: str | None = None
    # Back-pressure: past these, STOR is answered 452 (cameras try again) instead of piling up.
    max_queued_uploads: int = Field(10_000, ge=1)
    min_free_mb: float = Field(50, ge=0)  # on root_dir and data_dir; 0 turns the check off

    @field_validator("users", mode="before")
    @classmethod
    def _usernames_are_text(cls, value: Any) -> Any:
        # A numeric YAML username such as `1:` is still a camera called "1".
        if isinstance(value, dict):
            return {str(name): "" if pw is None else str(pw) for name, pw in value.items()}
        return value

    @field_validator("passive_ports")
    @classmethod
    def _valid_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None:
            first, last = value
            if not (1024 <= first <= last <= 65535):
                raise ValueError("must be [first, last] with 1024 <= first <= last <= 65535")
        return value

    @model_validator(mode="after")
    def _passwords_set(self) -> FtpServerConfig:
        for name, password in self.users.items():
            if not password.get_secret_value():
                raise ValueError(f"camera {name!r} has no password")
        return self


class SmtpConfig(StrictModel):
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"
    timeout_seconds: float = Field(30, gt=0)

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


DEFAULT_MESSAGE_HTML = "<p>List of objects:</p>$list<p>$image</p>"
DEFAULT_SUBJECT = "⚡ $camera: detected $labels"


class EmailConfig(StrictModel):
    transport: Literal["ses", "smtp", "none"] = "ses"
    sender_email: str | None = None
    sender_name: str = "Ipcam Analysis"
    message_html: str = DEFAULT_MESSAGE_HTML
    subject: str = DEFAULT_SUBJECT
    recipients: list[str] = Field(default_factory=list)
    smtp: SmtpConfig | None = None

    @model_validator(mode="after")
    def _complete_for_transport(self) -> EmailConfig:
        if self.transport == "none":
            return self
        if not self.sender_email:
            raise ValueError(f"sender_email is required when transport is {self.transport}")
        if not self.recipients:
            raise ValueError(f"recipients is required when transport is {self.transport}")
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("an smtp section (host, port, ...) is required when transport is smtp")
        return self


class RekognitionConfig(StrictModel):
    max_labels: int = Field(10, ge=1, le=1000)
    min_confidence_percent: float = Field(75, ge=0, le=100)
    image_resize_percent: int = Field(100, ge=1)
    price_per_1000_images: float = Field(1.0, ge=0)  # for the cost estimate on the dashboard

    @field_validator("image_resize_percent")
    @classmethod
    def _never_enlarge(cls, value: int) -> int:
        # The original enlarged images above 100 %; a bigger picture adds nothing.
        return min(value, 100)


class StationaryConfig(StrictModel):
    """Remember alerted boxes; an object that stays where it was does not alert again."""

    enabled: bool = False
    iou: float = Field(0.6, gt=0, le=1)  # overlap with a remembered box that means "still there"
    forget_after_minutes: float = Field(30, gt=0)  # unseen this long: it has left


def _polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) < 3:
        raise ValueError("a zone needs at least 3 [x, y] points")
    if not all(0 <= x <= 1 and 0 <= y <= 1 for x, y in points):
        raise ValueError("zone points are [x, y] fractions of the picture, between 0 and 1")
    return points


Zone = Annotated[list[tuple[float, float]], AfterValidator(_polygon)]


class FiltersConfig(StrictModel):
    """Drop what is not worth an alert; each filter is off by default (a config of the original
    format behaves exactly as before)."""

    min_area_percent: float = Field(0, ge=0, le=100)
    label_confidence: dict[str, float] = Field(default_factory=dict)
    zones: list[Zone] = Field(default_factory=list)  # ignore zones, relative coordinates
    # None: an object is in a zone when its box centre is; a number: when this share of its box is.
    zone_min_overlap_percent: float | None = Field(None, gt=0, le=100)
    # Bits of the 256-bit perceptual hash that may differ for a frame to count as a repeat.
    duplicate_hash_distance: int = Field(0, ge=0, le=256)
    stationary: StationaryConfig = Field(default_factory=StationaryConfig)
    cooldown_seconds: float = Field(0, ge=0)

    def merged(self, override: FiltersConfig | None) -> FiltersConfig:
        """This (global) config with the keys a camera set replaced."""
        if override is None:
            return self
        return self.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


class CallLimits(StrictModel):
    daily_calls: int | None = Field(None, ge=0)
    monthly_calls: int | None = Field(None, ge=0)


class BudgetConfig(CallLimits):
    """Caps on paid cloud calls; past them the local detector (or nothing) answers."""

    warn_percent: float = Field(80, gt=0, le=100)
    on_exhausted: Literal["local", "none"] = "local"


DetectorKind = Literal["local", "rekognition", "cascade"]


class CameraConfig(StrictModel):
    """Per-camera overrides of the global settings; anything left out is inherited."""

    labels: list[str] | None = None
    new_labels_only: bool | None = None
    time_window: TimeWindows = None  # [] means around the clock
    detector: DetectorKind | None = None
    min_confidence_percent: float | None = Field(None, ge=0, le=100)
    recipients: list[str] | None = None
    notify: list[AppriseUrl] | None = None
    filters: FiltersConfig | None = None
    budget: CallLimits | None = None


@dataclass(frozen=True)
class CameraSettings:
    """The effective settings of one camera: its overrides over the global ones."""

    name: str
    labels: tuple[str, ...]
    new_labels_only: bool
    time_windows: tuple[TimeWindow, ...] | None
    detector: str
    min_confidence_percent: float | None
    recipients: tuple[str, ...] | None
    notify: tuple[str, ...] | None
    filters: FiltersConfig
    budget: CallLimits


class HistoryConfig(StrictModel):
    """Events and their snapshots in data_dir; the defaults fit a 16 GB SD card with room to spare."""

    keep_days: float = Field(30, gt=0)
    max_snapshots_mb: float = Field(2000, gt=0)


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
    workers: int = Field(8, ge=1, le=128)
    ftp_server: FtpServerConfig = Field(default_factory=FtpServerConfig)
    email: EmailConfig = Field(default_factory=lambda: EmailConfig(transport="none"))
    notify: list[AppriseUrl] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    rekognition: RekognitionConfig = Field(default_factory=RekognitionConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    web: WebConfig = Field(default_factory=WebConfig)
    detector: DetectorConfig = Field(default_factory=RekognitionDetectorConfig)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_list(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must list at least one label, such as [Person, Vehicle]")
        if isinstance(value, str):
            return [value]
        return value

    @model_validator(mode="after")
    def _cameras_exist(self) -> AppConfig:
        for name in self.cameras:
            if name not in self.ftp_server.users:
                raise ValueError(
                    f"cameras.{name}: there is no FTP user {name!r} in ftp_server.users"
                )
        return self

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
            recipients=None if own.recipients is None else tuple(own.recipients),
            notify=None if own.notify is None else tuple(own.notify),
            filters=self.filters.merged(own.filters),
            budget=own.budget or CallLimits(),
        )

    def secrets(self) -> list[str]:
        """Every secret value in the config, for the log filter."""
        found = [pw.get_secret_value() for pw in self.ftp_server.users.values()]
        if self.email.smtp and self.email.smtp.password:
            found.append(self.email.smtp.password.get_secret_value())
        if self.web.password_hash:
            found.append(self.web.password_hash.get_secret_value())
        if self.mqtt.password:
            found.append(self.mqtt.password.get_secret_value())
        camera_urls = [url for camera in self.cameras.values() for url in camera.notify or ()]
        for url in [*self.notify, *camera_urls]:
            found += secrets_in_url(url)
        return found

    def masked_dump(self) -> dict[str, Any]:
        """The effective config as plain data, secrets masked, for `--check-config`."""
        dumped = _masked(self.model_dump(mode="python"))
        dumped["notify"] = [_masked_url(url) for url in self.notify]
        for name, camera in self.cameras.items():
            if camera.notify is not None:
                dumped["cameras"][name]["notify"] = [_masked_url(url) for url in camera.notify]
        return dumped


def _masked_url(url: str) -> str:
    """An Apprise URL with its tokens and passwords replaced by ****."""
    for secret in sorted(secrets_in_url(url)[1:], key=len, reverse=True):
        url = url.replace(secret, "****")
    return url


def _masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "****" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


# A real configuration holds a few hundred values; aliases nested in each other multiply.
MAX_CONFIG_VALUES = 100_000


def _expanded_size(data: object) -> int:
    """How many values `data` holds once YAML aliases are expanded, counted without expanding
    them: a list or mapping that appears many times (an alias) is counted once and reused."""
    sizes: dict[int, int] = {}

    def size(value: object) -> int:
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            return 1
        known = sizes.get(id(value))
        if known is None:
            sizes[id(value)] = 1  # an alias to itself counts once, not forever
            known = sizes[id(value)] = 1 + sum(size(child) for child in children)
        return known

    return size(data)


def load_config(path: Path) -> AppConfig:
    """Read, validate and resolve a config file, or raise ConfigError with one line for the user."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # PyYAML builds nested brackets recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping of keys to values")
    if _expanded_size(data) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{path}: the configuration expands to more than {MAX_CONFIG_VALUES} values "
            "(YAML aliases, *name, repeated inside each other?)"
        )
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc, AppConfig)}") from None
    return resolve_paths(config, path.resolve().parent)


def resolve_paths(config: AppConfig, base: Path) -> AppConfig:
    """Relative paths in the config mean relative to the config file's folder."""

    def resolved(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    log_file = config.log_configuration_file
    return config.model_copy(
        update={
            "data_dir": resolved(config.data_dir),
            "log_configuration_file": resolved(log_file) if log_file else None,
            "ftp_server": config.ftp_server.model_copy(
                update={"root_dir": resolved(config.ftp_server.root_dir)}
            ),
        }
    )
