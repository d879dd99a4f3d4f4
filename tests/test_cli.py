"""The command line as users run it: real processes, exit codes, what they print."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from paho.mqtt import publish

from harness.aws import Moto, label
from harness.backends import query_database
from harness.mqtt import Broker, MqttWatcher
from harness.service import (
    CLI,
    DATA,
    PASSWORDS,
    base_config,
    free_port,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from ipcam_analysis.service.app import NO_ALERT_CHANNEL

ROOT = Path(__file__).resolve().parents[1]
SEED = DATA / "seed"
PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, aws: Moto) -> None:
    env = service_environment(aws)
    path = write_config(tmp_path, {"rekognition": {"min_confidance_percent": 90}})
    line = assert_one_line_error(run_cli(["-c", str(path)], env, tmp_path), 2)
    assert "min_confidance_percent" in line and "min_confidence_percent" in line
    line = assert_one_line_error(run_cli(["-c", str(tmp_path / "missing.yaml")], env, tmp_path), 2)
    assert "not found" in line
    (tmp_path / "broken.yaml").write_text("ftp_server: [\n")
    line = assert_one_line_error(run_cli(["-c", "broken.yaml"], env, tmp_path), 2)
    assert "YAML" in line
    path = write_config(tmp_path, base_config(tmp_path))
    result = run_cli(["-c", str(path), "--role", "ingest,cook"], env, tmp_path)
    assert result.returncode == 2  # argparse's usage, then its one error line
    assert result.stderr.splitlines()[-1].endswith(
        "--role: cook: the roles are ingest, worker, web"
    )


def test_check_config_prints_effective_config_with_secrets_masked(
    tmp_path: Path, aws: Moto
) -> None:
    config = base_config(tmp_path)
    config["email"] = {
        "transport": "smtp",
        "sender_email": "a@example.com",
        "recipients": ["b@example.com"],
        "smtp": {"host": "127.0.0.1", "password": "smtp-secret-pw"},
    }
    path = write_config(tmp_path, config)
    result = run_cli(["--check-config", "-c", str(path)], service_environment(aws), tmp_path)
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["ftp_server"]["users"] == {"cam01": "****", "cam02": "****"}
    assert shown["email"]["smtp"]["password"] == "****"
    assert shown["rekognition"]["max_labels"] == 10  # defaults are shown too
    for secret in [*PASSWORDS.values(), "smtp-secret-pw"]:
        assert secret not in result.stdout + result.stderr


def test_test_aws_masks_secrets_and_passes(tmp_path: Path, aws: Moto) -> None:
    aws.rekognition.labels = [label("Paper", 70.0)]
    env = service_environment(aws)
    path = write_config(tmp_path, base_config(tmp_path))
    result = run_cli(["--test-aws", "-c", str(path)], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stdout
    assert f"AWS_SECRET_ACCESS_KEY=****{env['AWS_SECRET_ACCESS_KEY'][-4:]}" in result.stdout
    assert "Response OK" in result.stdout and "Objects detected" in result.stdout
    assert "Email successfully sent." in result.stdout and "Test OK" in result.stdout
    (request,) = aws.rekognition.requests
    assert len(request["image"]) > 0
    assert [m["Subject"] for m in aws.sent_emails()] == ["Email test"]
    log = (tmp_path / "data" / "ipcam_analysis.log").read_text()
    assert env["AWS_SECRET_ACCESS_KEY"] not in log


def test_test_aws_fails_when_ses_refuses(tmp_path: Path, aws: Moto) -> None:
    config = base_config(tmp_path, email={"sender_email": "not-verified@example.com"})
    result = run_cli(
        ["-t", "-c", str(write_config(tmp_path, config))], service_environment(aws), tmp_path
    )
    assert result.returncode == 1
    assert "EMAIL ERROR" in result.stdout and "Test FAILED" in result.stdout


def test_test_aws_without_credentials_is_a_clear_message(tmp_path: Path, aws: Moto) -> None:
    env = service_environment(aws)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    result = run_cli(
        ["-t", "-c", str(write_config(tmp_path, base_config(tmp_path)))], env, tmp_path
    )
    assert result.returncode == 1
    assert "no AWS credentials found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_original_config_and_log_config_work_unchanged(
    tmp_path: Path, aws: Moto, service_process
) -> None:
    """The seed config (only port and folders changed) runs, logs like the original, and alerts."""
    config = yaml.safe_load((SEED / "config.original-format.yaml").read_text())
    config["ftp_server"]["port"] = 0
    config["ftp_server"]["root_dir"] = str(tmp_path / "ftp")
    config["web"] = {"port": 0}  # the dashboard's default 8080 may be taken on this machine
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    shutil.copy(SEED / "log_config.original-format.yaml", tmp_path / "log_config.yaml")
    aws.rekognition.labels = [PERSON]
    # The window is 5:00–18:00 server time: run the process in a time zone where it is noon.
    utc_hour = time.gmtime().tm_hour
    offset = (12 - utc_hour + 12) % 24 - 12  # local = UTC + offset, within -12..+11
    env = service_environment(aws, TZ=f"XXX{-offset:+d}")
    process = service_process(["-c", "config.yaml", "-n"], env)
    _, port = process.address()
    upload(
        ("127.0.0.1", port),
        "cam01",
        PERSON_JPEG,
        "2026-11-23/001/jpg/12/00/01[M][0@0][0].jpg",
        password=config["ftp_server"]["users"]["cam01"],
    )
    (message,) = wait_until(aws.sent_emails, 60, "the alert e-mail")
    assert message["Subject"] == "⚡ cam01: detected new objects"
    assert process.terminate() == 0
    log_file = (tmp_path / "ipcam_analysis.log").read_text()  # relative to the working directory
    assert "Loading configuration from" in log_file
    assert "Camera cam01 logged in" in log_file
    for password in config["ftp_server"]["users"].values():
        assert password not in log_file and password not in process.output


def test_sigkill_with_items_queued_loses_nothing_and_sends_once(
    tmp_path: Path, aws: Moto, service_process
) -> None:
    aws.rekognition.labels = [PERSON]
    aws.rekognition.delay_seconds = 1.5
    path = write_config(tmp_path, base_config(tmp_path, workers=2))
    env = service_environment(aws)
    first = service_process(["-c", str(path), "-n"], env)
    address = first.address()
    names = [f"kill-{n}.jpg" for n in range(6)]
    for name in names:
        upload(address, "cam01", PERSON_JPEG, name)
    wait_until(lambda: aws.rekognition.calls >= 1, what="analysis to start")
    first.kill()

    data = tmp_path / "data"
    ((pending,),) = query_database(data, "SELECT COUNT(*) FROM uploads WHERE state != 'done'")
    assert pending >= 4  # the kill came while most uploads were still queued

    aws.rekognition.delay_seconds = 0
    second = service_process(["-c", str(path), "-n"], env)
    second.address()

    def all_done() -> bool:
        rows = query_database(data, "SELECT state, outcome, notified FROM uploads")
        return len(rows) == 6 and all(r == ("done", "alert", '["email"]') for r in rows)

    wait_until(all_done, 60, "every upload to be processed")
    assert second.terminate() == 0
    assert len(aws.sent_emails()) == 6


def test_root_script_runs_like_the_original(tmp_path: Path, aws: Moto) -> None:
    path = write_config(tmp_path, base_config(tmp_path))
    result = subprocess.run(
        [str(ROOT / "ipcam_analysis.py"), "-c", str(path), "--check-config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=service_environment(aws),
    )
    assert result.returncode == 0, result.stderr
    assert "Configuration OK" in result.stderr


@pytest.mark.parametrize("folder", ["root", "elsewhere"])
def test_python_dash_m_runs_the_command_line(tmp_path: Path, aws: Moto, folder: str) -> None:
    # From the repository root, where the original's script of the same name lies, too.
    path = write_config(tmp_path, base_config(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "ipcam_analysis", "-c", str(path), "--check-config"],
        cwd=ROOT if folder == "root" else tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=service_environment(aws),
    )
    assert result.returncode == 0, result.stderr
    assert "Configuration OK" in result.stderr


def test_test_aws_tests_smtp_when_that_is_the_transport(
    tmp_path: Path, aws: Moto, smtp_sink
) -> None:
    config = base_config(tmp_path)
    config["email"] = {
        "transport": "smtp",
        "sender_email": "sender@example.com",
        "recipients": ["owner@example.com"],
        "smtp": {"host": smtp_sink.host, "port": smtp_sink.port, "security": "none"},
    }
    result = run_cli(
        ["-t", "-c", str(write_config(tmp_path, config))], service_environment(aws), tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Testing email SMTP settings" in result.stdout and "Test OK" in result.stdout
    (message,) = wait_until(lambda: smtp_sink.messages, 30, "the test e-mail")
    assert message["Subject"] == "Email test"


AVAILABILITY = "ipcam_analysis/availability"
PERSON_SENSOR = "ipcam_analysis/cam01/person/state"


def published_after(broker: Broker, watcher: MqttWatcher, after: float) -> list[str]:
    """The topics published since `after`, made certain by a message of the test's own sent
    last: the broker passes on what it received in order."""
    publish.single("test/fence", "1", qos=1, hostname=broker.host, port=broker.port)
    fence = watcher.wait_for("test/fence", after=after)
    return [m.topic for m in watcher.arrived_after(after) if m.arrived_at < fence.arrived_at]


def test_a_second_instance_says_one_line_and_leaves_the_running_one_online(
    tmp_path: Path, aws: Moto, service_process, mqtt_broker: Broker
) -> None:
    """Started again by mistake (same config), or with its own data_dir on a port taken: the
    second one says why in one line, exits 1, and publishes nothing in the first one's name."""
    aws.rekognition.labels = [PERSON]
    port = free_port()
    mqtt = {"host": mqtt_broker.host, "port": mqtt_broker.port, "alert_seconds": 3600}
    path = write_config(tmp_path, base_config(tmp_path, ftp_server={"port": port}, mqtt=mqtt))
    env = service_environment(aws)
    first = service_process(["-c", str(path), "-n"], env)
    upload(first.address(), "cam01", PERSON_JPEG, "person.jpg")
    watcher = mqtt_broker.watch()
    watcher.wait_for(AVAILABILITY, "online")
    watcher.wait_for(PERSON_SENSOR, "ON")
    before = time.monotonic()

    same = run_cli(["-c", str(path)], env, tmp_path)
    line = assert_one_line_error(same, 1)
    assert line == (
        "Another ipcam-analysis is already running with data_dir"
        f" {tmp_path / 'data'} (pid {first.process.pid})"
    )
    assert same.stdout == ""

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = base_config(elsewhere, ftp_server={"port": port}, mqtt=mqtt)
    taken = run_cli(["-c", str(write_config(elsewhere, other))], env, elsewhere)
    line = assert_one_line_error(taken, 1)
    assert line.startswith(f"Error: cannot listen for FTP on 127.0.0.1:{port}: ")
    assert line.endswith("Address already in use")
    assert taken.stdout == ""

    assert published_after(mqtt_broker, watcher, before) == []
    assert mqtt_broker.retained(AVAILABILITY) == b"online"
    assert mqtt_broker.retained(PERSON_SENSOR) == b"ON"
    assert NO_ALERT_CHANNEL not in first.output
    assert first.terminate() == 0


@pytest.mark.parametrize("console_log", [False, True])
def test_without_an_alert_channel_the_console_says_so_once(
    tmp_path: Path, aws: Moto, service_process, console_log: bool
) -> None:
    config = base_config(tmp_path, email={"transport": "none", "recipients": []})
    path = write_config(tmp_path, config)
    args = ["-c", str(path), *(["-n"] if console_log else [])]
    process = service_process(args, service_environment(aws))
    wait_until(lambda: "IP Camera Analysis started" in process.output, what="the start")
    assert process.terminate() == 0
    (line,) = [line for line in process.lines if "alert channel" in line]
    assert line.endswith(NO_ALERT_CHANNEL)
    log_file = (tmp_path / "data" / "ipcam_analysis.log").read_text(encoding="utf-8")
    assert f"WARNING - {NO_ALERT_CHANNEL}" in log_file


def check_config(tmp_path: Path, aws: Moto, **overrides: object) -> subprocess.CompletedProcess:
    path = write_config(tmp_path, base_config(tmp_path, **overrides))
    return run_cli(["--check-config", "-c", str(path)], service_environment(aws), tmp_path)


def test_check_config_prints_the_values_in_force(tmp_path: Path, aws: Moto) -> None:
    result = check_config(
        tmp_path,
        aws,
        ftp_server={"root_dir": "uploads"},
        smtp_server={"enabled": True, "port": 0},
        detector={"type": "local", "model_cache_dir": "models"},
    )
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["ftp_server"]["root_dir"] == str(tmp_path / "uploads")
    # The SMTP source keeps its files under ftp_server.root_dir: no second, wrong root_dir.
    assert not {"root_dir", "users", "senders"} & set(shown["smtp_server"])
    assert "self_signed_dir" not in shown["smtp_server"]["tls"]
    assert shown["detector"]["model_cache_dir"] == str(tmp_path / "models")
    assert "region" not in shown["rekognition"] and "region" not in shown["email"]

    result = check_config(
        tmp_path, aws, detector={"type": "rekognition", "image_resize_percent": 50}
    )
    shown = yaml.safe_load(result.stdout)
    assert shown["rekognition"]["image_resize_percent"] == 50
    assert shown["rekognition"]["min_confidence_percent"] == 80  # from the rekognition section
    assert shown["detector"]["min_confidence_percent"] == 80


def test_keys_the_config_takes_from_elsewhere_are_unknown(tmp_path: Path, aws: Moto) -> None:
    result = check_config(tmp_path, aws, mqtt={"host": "127.0.0.1", "sensor_labels": ["Cat"]})
    line = assert_one_line_error(result, 2)
    assert line == (
        f"Configuration error: {tmp_path / 'config.yaml'}: unknown key 'mqtt.sensor_labels'"
    )


def test_smtp_username_without_password_is_refused(tmp_path: Path, aws: Moto) -> None:
    email = {
        "transport": "smtp",
        "sender_email": "a@example.com",
        "recipients": ["b@example.com"],
        "smtp": {"host": "127.0.0.1", "username": "camera-alerts"},
    }
    line = assert_one_line_error(check_config(tmp_path, aws, email=email), 2)
    assert line.endswith(
        "config.yaml: email.smtp: username is set without password: set both, or neither "
        "for a server that takes mail without a login"
    )


def test_unknown_labels_are_warned_with_the_nearest_names(tmp_path: Path, aws: Moto) -> None:
    result = check_config(
        tmp_path,
        aws,
        labels=["Persn", "Vehicle"],
        detector={"type": "local"},
        cameras={
            "cam01": {"labels": ["Dgo"]},
            "cam02": {"labels": ["Package"], "detector": "cascade"},
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:-1] == [
        "Warning: labels: 'Persn' is not a label the local detector knows (nearest: Person)",
        "Warning: cameras.cam01.labels: 'Dgo' is not a label the local detector knows "
        "(nearest: Dog)",
        "Warning: cameras.cam02.labels: 'Package' is not a label the local detector knows "
        "(none close): the cascade asks Rekognition about every picture",
    ]
    # Rekognition answers thousands of labels: only a near miss of a known one is suspect.
    result = check_config(tmp_path, aws, labels=["Persn", "Package"])
    assert result.stderr.splitlines()[:-1] == [
        "Warning: labels: 'Persn' is not a label Rekognition is known to give (nearest: Person)"
    ]
