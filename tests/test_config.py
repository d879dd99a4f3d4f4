"""Configuration: the original's format unchanged, clear one-line errors, masking."""

from __future__ import annotations

import shutil
from datetime import date, datetime, time
from pathlib import Path

import pytest

from ipcam_analysis.config import AppConfig, load_config
from ipcam_analysis.errors import ConfigError
from ipcam_analysis.rules import in_time_windows

SEED = Path(__file__).resolve().parent / "data" / "seed"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_original_config_loads_with_its_meaning(tmp_path: Path) -> None:
    shutil.copy(SEED / "config.original-format.yaml", tmp_path / "config.yaml")
    config = load_config(tmp_path / "config.yaml")
    assert config.labels == ["Person", "Animal", "Vehicle"]
    assert config.time_window is not None
    (window,) = config.time_window
    assert (window.start, window.end) == (time(5, 0), time(18, 0))
    assert config.email.transport == "ses"
    assert config.email.subject == "⚡ $camera: detected new objects"
    assert config.rekognition.min_confidence_percent == 85
    assert config.rekognition.max_labels == 10
    assert config.ftp_server.port == 2121
    assert config.ftp_server.root_dir == Path("/tmp")
    assert config.ftp_server.users["cam01"].get_secret_value() == "4kyCBXcbrVmLqmD5"
    assert config.detector.type == "rekognition"  # no detector key: as the original
    # Relative paths resolve against the config file's folder.
    assert config.log_configuration_file == tmp_path / "log_config.yaml"
    assert config.data_dir == tmp_path / "data"


def test_unquoted_times_are_understood(tmp_path: Path) -> None:
    # YAML 1.1 reads 5:00 as the integer 300 and 23:59 as 1439.
    config = load_config(write(tmp_path, "time_window:\n  start: 5:00\n  end: 23:59\n"))
    assert config.time_window is not None
    (window,) = config.time_window
    assert (window.start, window.end) == (time(5, 0), time(23, 59))


@pytest.mark.parametrize(
    ("start", "end", "now", "inside"),
    [
        ("0:00", "23:59", time(23, 59, 59, 999999), True),  # the original missed this minute
        ("5:00", "18:00", time(18, 0, 59), True),
        ("5:00", "18:00", time(18, 1), False),
        ("5:00", "18:00", time(4, 59, 59), False),
        ("22:00", "6:00", time(23, 30), True),  # wraps past midnight
        ("22:00", "6:00", time(3, 0), True),
        ("22:00", "6:00", time(12, 0), False),
        ("7:00", "7:00", time(15, 0), True),  # start == end: always
    ],
)
def test_time_window_edges(tmp_path: Path, start: str, end: str, now: time, inside: bool) -> None:
    config = load_config(write(tmp_path, f"time_window: {{start: '{start}', end: '{end}'}}\n"))
    assert config.time_window is not None
    (window,) = config.time_window
    assert window.contains(datetime.combine(date(2026, 11, 23), now)) is inside


def test_several_windows_and_days_of_week(tmp_path: Path) -> None:
    text = (
        "time_window:\n"
        "  - {start: '22:00', end: '06:00', days: [fri, sat]}\n"
        "  - {start: '12:00', end: '13:00'}\n"
    )
    windows = load_config(write(tmp_path, text)).time_window
    friday_night = datetime(2026, 11, 27, 23, 0)  # a Friday
    saturday_early = datetime(2026, 11, 28, 3, 0)  # still Friday's window
    monday_early = datetime(2026, 11, 23, 3, 0)  # Sunday's window: not listed
    monday_noon = datetime(2026, 11, 23, 12, 30)
    assert in_time_windows(windows, friday_night)
    assert in_time_windows(windows, saturday_early)
    assert not in_time_windows(windows, monday_early)
    assert in_time_windows(windows, monday_noon)


def test_unknown_key_names_the_closest_known_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, "rekognition:\n  min_confidance_percent: 90\n")
    assert "rekognition.min_confidance_percent" in message
    assert "did you mean 'min_confidence_percent'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ftp_server: {port: 99999}", "ftp_server.port"),
        ("labels:\n", "labels"),
        ("time_window: {start: '25:00', end: '06:00'}", "time_window[0].start"),
        ("time_window: {start: '05:00'}", "time_window[0].end"),
        (
            "email: {transport: smtp, sender_email: a@example.com, recipients: [b@example.com]}",
            "smtp",
        ),
        ("email: {transport: ses}", "sender_email"),
        ("workers: many", "workers"),
        ("- just\n- a list\n", "mapping"),
        ("key: [unclosed\n", "line"),
        ("detector: {type: magic}", "detector.type"),
    ],
)
def test_bad_configs_give_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_numeric_camera_names_and_masked_dump(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "ftp_server:\n  users:\n    1: secretpw1\n"))
    assert "1" in config.ftp_server.users
    dumped = config.masked_dump()
    assert dumped["ftp_server"]["users"] == {"1": "****"}
    assert "secretpw1" not in repr(dumped)


def test_resize_never_enlarges() -> None:
    assert (
        AppConfig.model_validate(
            {"rekognition": {"image_resize_percent": 150}}
        ).rekognition.image_resize_percent
        == 100
    )


SOURCES_CONFIG = """
ftp_server: {root_dir: uploads, users: {cam01: pw-cam01, cam02: pw-cam02}}
smtp_server: {enabled: true, port: 2526, tls: {mode: optional, certfile: tls/cert.pem, keyfile: tls/key.pem}}
alarm_server: {enabled: true}
cameras:
  cam01: {smtp_from: Cam01@Cameras.Example, serial_id: a7c81f0e5d6b4c3a}
  cam02: {smtp_from: [hik@cameras.example, nvr@cameras.example]}
"""


def test_smtp_and_alarm_sources_get_the_cameras_identities(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCES_CONFIG))
    assert list(config.source_settings()) == ["ftp", "smtp"]
    assert list(config.event_source_settings()) == ["alarm"]
    cameras = config.camera_directory
    assert cameras.passwords == config.ftp_server.users
    assert cameras.root_dir == tmp_path / "uploads"
    assert cameras.senders == {
        "cam01@cameras.example": "cam01",
        "hik@cameras.example": "cam02",
        "nvr@cameras.example": "cam02",
    }
    assert config.source_settings()["smtp"].tls.certfile == tmp_path / "tls" / "cert.pem"
    assert cameras.serial_ids == {"a7c81f0e5d6b4c3a": "cam01"}
    assert config.notifier_context.camera_motion is True
    assert config.tls_dir == tmp_path / "data" / "tls"


def test_sources_are_off_by_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "ftp_server: {users: {cam01: pw}}"))
    assert list(config.source_settings()) == ["ftp"] and config.event_source_settings() == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp_server: {tls: {keyfile: key.pem}}", "smtp_server.tls: keyfile is set"),
        ("smtp_server: {users: {cam01: pw}}", "unknown key 'smtp_server.users'"),
        ("smtp_server: {max_message_mb: 0}", "smtp_server.max_message_mb"),
        ("alarm_server: {port: 70000}", "alarm_server.port"),
        ("cameras: {cam01: {smtp_from: not-an-address}}", "not an e-mail address"),
        (
            "cameras: {cam01: {smtp_from: a@b.example}, cam02: {smtp_from: A@B.example}}",
            "cameras.cam02.smtp_from: a@b.example is camera cam01's already",
        ),
        (
            "cameras: {cam01: {serial_id: abc}, cam02: {serial_id: abc}}",
            "cameras.cam02.serial_id: abc is camera cam01's already",
        ),
    ],
)
def test_bad_source_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    users = "ftp_server: {users: {cam01: pw1, cam02: pw2}}\n"
    assert expected in error_of(tmp_path, users + text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt: {cameras: [cam09]}", "unknown key 'mqtt.cameras'"),
        ("mqtt: {sensor_labels: [Cat]}", "unknown key 'mqtt.sensor_labels'"),
        ("mqtt: {dashboard_url: 'http://nvr.lan'}", "unknown key 'mqtt.dashboard_url'"),
        ("mqtt: {camera_motion: true}", "unknown key 'mqtt.camera_motion'"),
        ("email: {transport: none, region: eu-west-1}", "unknown key 'email.region'"),
        ("rekognition: {region: eu-west-1}", "unknown key 'rekognition.region'"),
        ("detector: {type: cascade, cloud: {max_labels: 5}}", "unknown key 'detector.cloud'"),
        ("smtp_server: {root_dir: mail}", "unknown key 'smtp_server.root_dir'"),
        ("http_ingest: {users: {cam01: x}}", "unknown key 'http_ingest.users'"),
        ("ftp_server: {tls: {self_signed_dir: x}}", "unknown key 'ftp_server.tls.self_signed_dir'"),
    ],
)
def test_keys_the_config_takes_from_elsewhere_are_unknown(
    tmp_path: Path, text: str, expected: str
) -> None:
    # The stages get them from the rest of the configuration (the cameras, data_dir,
    # aws_region, the labels): a user writing one learns at once that it is not a setting.
    assert error_of(tmp_path, text).endswith(expected)


def test_the_model_cache_resolves_against_the_config_folder(tmp_path: Path) -> None:
    for kind in ("local", "cascade"):
        config = load_config(write(tmp_path, f"detector: {{type: {kind}, model_cache_dir: m}}"))
        assert config.detector_settings().model_cache_dir == tmp_path / "m"
    config = load_config(write(tmp_path, "detector: {type: local}"))
    assert config.detector_settings().model_cache_dir == tmp_path / "data" / "models"


def test_an_smtp_login_needs_its_password(tmp_path: Path) -> None:
    mail = "email: {transport: smtp, sender_email: a@b.example, recipients: [c@b.example], "
    message = error_of(tmp_path, mail + "smtp: {host: mail.lan, username: cams}}")
    assert message.endswith(
        "email.smtp: username is set without password: set both, or "
        "neither for a server that takes mail without a login"
    )
    config = load_config(write(tmp_path, mail + "smtp: {host: mail.lan}}"))
    assert config.email.smtp is not None and config.email.smtp.username is None


def test_a_cameras_own_email_section_holds_only_what_differs(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "ftp_server: {users: {cam01: pw1, cam02: pw2, cam03: pw3}}\n"
            "email: {transport: ses, sender_email: a@b.example, recipients: [all@b.example]}\n"
            "cameras:\n"
            "  cam01: {email: {recipients: [gate@b.example], subject: 'Gate: $labels'}}\n"
            "  cam02: {recipients: [garden@b.example]}\n",
        )
    )
    own, legacy, inherited = (config.notifier_settings(c)["email"] for c in config.camera_names)
    assert own == config.email.model_copy(
        update={"recipients": ["gate@b.example"], "subject": "Gate: $labels"}
    )
    assert legacy == config.email.model_copy(update={"recipients": ["garden@b.example"]})
    assert inherited == config.email
    message = error_of(
        tmp_path, "ftp_server: {users: {cam01: pw1}}\ncameras: {cam01: {email: {transport: smtp}}}"
    )
    assert message.endswith("cameras.cam01.email: sender_email is required when transport is smtp")
