"""A new user's first hour, as the README tells it: config.example.yaml copied and started with the
real console script, the quick start's picture sent, then each way of "Setting up a camera" with
real clients. What the user sees is checked: the events and their reasons on the JSON API, the
e-mails, what the MQTT broker keeps, the console's lines.

The copy of the example config changes only what a test must: loopback addresses and free ports,
the e-mail transport pointed at a local sink, MQTT at a local broker, a dashboard login, the
sources the README turns on (FTPS, e-mail, HTTP push) and a second camera for the burst."""

from __future__ import annotations

import io
import re
import smtplib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from harness.aws import Moto
from harness.ftp import upload_with_ftplib
from harness.mail_camera import camera_mail
from harness.mqtt import Broker, running_broker
from harness.service import (
    CLI,
    DATA,
    ServiceProcess,
    service_environment,
    wait_until,
)
from harness.smtp import SmtpSink, running_sink

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
PASSWORD = EXAMPLE["ftp_server"]["users"]["cam01"]  # the example's, as a new user keeps it
BURST_CAMERA, BURST_PASSWORD = "cam02", "cam02-garden-pw"
DASHBOARD_LOGIN = ("admin", "dashboard-pw-5519")
AVAILABILITY = "ipcam_analysis/availability"
WAIT_SECONDS = 90.0  # the local detector on a busy 2-core machine
NOT_FINAL = {"retry"}


@dataclass
class Journey:
    """The service started from the copy of the example config, and what it talks to."""

    folder: Path
    config: Path
    env: dict[str, str]
    process: ServiceProcess
    sink: SmtpSink
    broker: Broker

    def port(self, listener: str) -> int:
        """The port a listener announced on the console (`FTP server listening on …:PORT`)."""
        match = re.search(rf"{listener}[^\n]*?127\.0\.0\.1:(\d+)", self.process.output)
        assert match, f"no {listener!r} line on the console:\n{self.process.output}"
        return int(match.group(1))

    def api(self, path: str) -> Any:
        answer = httpx.get(
            f"http://127.0.0.1:{self.port('Dashboard:')}{path}", auth=DASHBOARD_LOGIN, timeout=30
        )
        answer.raise_for_status()
        return answer.json() if path.startswith("/api/") else answer

    def events(self, camera: str = "cam01") -> list[dict[str, Any]]:
        """Oldest first."""
        return list(reversed(self.api(f"/api/events?camera={camera}&limit=500")["events"]))

    def decided(self, name: str, count: int = 1, camera: str = "cam01") -> list[dict[str, Any]]:
        """The events of the uploads called `name`, once `count` of them are decided."""

        def found() -> list[dict[str, Any]] | None:
            events = [e for e in self.events(camera) if named(e, name)]
            done = [e for e in events if e["outcome"] not in NOT_FINAL]
            return done if len(done) >= count else None

        return wait_until(found, WAIT_SECONDS, f"{count} decided event(s) of {name}")


def named(event: dict[str, Any], name: str) -> bool:
    """The upload was called `name` (an e-mailed picture's is prefixed: `smtp/<day>/…-name`)."""
    return event["original_name"] == name or event["original_name"].endswith(f"-{name}")


def example_config_for_test(folder: Path, **changes: Any) -> Path:
    """The example config with loopback addresses and free ports, plus `changes` by section."""
    config = yaml.safe_load(yaml.safe_dump(EXAMPLE))
    config["ftp_server"].update(host="127.0.0.1", port=0)
    config["web"]["port"] = 0
    for section, values in changes.items():
        if isinstance(config.get(section), dict):
            config[section].update(values)
        else:
            config[section] = values
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def start(config: Path, env: dict[str, str]) -> ServiceProcess:
    """`ipcam-analysis -c config.yaml -n` in the config's folder, once its dashboard is up."""
    process = ServiceProcess(["-c", config.name, "-n"], config.parent, env)
    process.address(WAIT_SECONDS)
    wait_until(lambda: "Dashboard: http" in process.output, WAIT_SECONDS, "the dashboard")
    return process


def hash_password(password: str, env: dict[str, str]) -> str:
    """`printf '%s' "$PASSWORD" | ipcam-analysis hash-password`, as the README says."""
    result = subprocess.run(
        [*CLI, "hash-password"], input=password, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory, moto_server: Moto) -> Iterator[Journey]:
    folder = tmp_path_factory.mktemp("journey")
    env = service_environment(moto_server)
    with running_sink(with_login=False) as sink, running_broker(folder / "mosquitto") as broker:
        config = example_config_for_test(
            folder,
            ftp_server={
                "tls": {"mode": "optional"},
                "users": {"cam01": PASSWORD, BURST_CAMERA: BURST_PASSWORD},
            },
            http_ingest={"enabled": True, "host": "127.0.0.1", "port": 0},
            smtp_server={"enabled": True, "host": "127.0.0.1", "port": 0},
            email={
                "transport": "smtp",
                "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
            },
            mqtt={"host": broker.host, "port": broker.port},
            web={
                "username": DASHBOARD_LOGIN[0],
                "password_hash": hash_password(DASHBOARD_LOGIN[1], env),
            },
        )
        process = start(config, env)
        try:
            yield Journey(folder, config, env, process, sink, broker)
        finally:
            process.terminate()


def picture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def alert_mails(journey: Journey, camera: str) -> list[EmailMessage]:
    return [m for m in journey.sink.messages if f"{camera}: detected" in str(m["Subject"])]


def error_mails(journey: Journey) -> list[EmailMessage]:
    return [m for m in journey.sink.messages if "error" in str(m["Subject"]).lower()]


def assert_is_jpeg(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "JPEG"


def test_quick_start_picture_alerts_by_email_console_dashboard_and_mqtt(journey: Journey) -> None:
    command = re.search(r"^curl -T (\S+) ftp://(\S+)$", README, re.MULTILINE)
    assert command, "the README's quick start has no `curl -T PICTURE ftp://…` line"
    url = "ftp://" + command.group(2).replace(":2121/", f":{journey.port('FTP server')}/")
    subprocess.run(["curl", "-sS", "-T", command.group(1), url], cwd=ROOT, check=True, timeout=60)
    name = Path(command.group(1)).name

    (event,) = journey.decided(name)
    assert event["outcome"] == "alert" and "Person" in event["triggered"]
    assert event["source"] == "ftp"
    assert_is_jpeg(journey.api(event["snapshot_url"]).content)
    # The console line the README shows, to the labels and their confidences.
    shown = re.search(r"DETECTED LABELS from cam01 \(.*?\): (.*)$", README, re.MULTILINE)
    assert shown, "the README's quick start shows no DETECTED LABELS line"
    printed = re.search(r"DETECTED LABELS from cam01 \(.*?\): (.*)$", journey.process.output, re.M)
    assert printed and printed.group(1) == shown.group(1)

    (mail,) = wait_until(lambda: alert_mails(journey, "cam01"), WAIT_SECONDS, "the alert e-mail")
    assert mail["To"] == EXAMPLE["email"]["recipients"][0]
    assert "Person" in mail.get_body(("plain",)).get_content()
    assert "Person" in mail.get_body(("html",)).get_content()
    (image,) = [part for part in mail.walk() if part.get_content_maintype() == "image"]
    assert re.fullmatch(r"cam01_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.jpg", image.get_filename())
    assert_is_jpeg(image.get_content())

    assert journey.broker.retained(AVAILABILITY) == b"online"
    assert_is_jpeg(journey.broker.retained("ipcam_analysis/cam01/snapshot"))


def test_ftp_passive_and_active_into_dated_folders(journey: Journey) -> None:
    address = ("127.0.0.1", journey.port("FTP server"))
    dated = "2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg"
    upload_with_ftplib(*address, "cam01", PASSWORD, dated, picture("darknet_dog.jpg"), True)
    (passive,) = journey.decided(dated)
    upload_with_ftplib(
        *address, "cam01", PASSWORD, "active.jpg", picture("darknet_horses.jpg"), False
    )
    (active,) = journey.decided("active.jpg")
    for event in (passive, active):
        assert event["source"] == "ftp" and event["outcome"] != "error", event


def test_ftps_with_curl(journey: Journey) -> None:
    url = f"ftp://127.0.0.1:{journey.port('FTP server')}/ftps.jpg"
    people = str(DATA / "opencv_vtest_f0300.jpg")
    subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "-k", "-u", f"cam01:{PASSWORD}", "-T", people, url],
        check=True,
        timeout=60,
    )
    (event,) = journey.decided("ftps.jpg")
    assert event["source"] == "ftps" and event["outcome"] != "error", event
    assert "SHA-256 fingerprint" in journey.process.output


def send_camera_mail(journey: Journey, camera: str, password: str, message: EmailMessage) -> None:
    """As a Hikvision camera sends: AUTH LOGIN without TLS, the pictures attached."""
    with smtplib.SMTP("127.0.0.1", journey.port("SMTP server"), timeout=60) as client:
        client.login(camera, password)
        client.send_message(message)


def test_hikvision_email_with_the_picture_attached(journey: Journey) -> None:
    message = camera_mail(
        [("hikvision.jpg", picture("opencv_tree_f0000.jpg"))],
        subject="Motion Detection on cam01",
        text="EVENT TYPE: Motion Detection\nCHANNEL NAME: Camera 01\n",
    )
    send_camera_mail(journey, "cam01", PASSWORD, message)
    (event,) = journey.decided("hikvision.jpg")
    assert event["source"] == "smtp" and event["outcome"] != "error", event
    assert "Motion Detection on cam01" in event["note"]


def test_http_push_with_curl(journey: Journey) -> None:
    upload = f"http://127.0.0.1:{journey.port('HTTP uploads')}/upload"
    login = ["-u", f"cam01:{PASSWORD}"]

    def curl(*args: str) -> tuple[int, str]:
        command = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *login, *args]
        output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        body, _, status = output.stdout.rpartition("\n")
        return int(status), body

    vtest = str(DATA / "opencv_vtest_f0750.jpg")
    status, body = curl("-F", f"file=@{vtest}", upload)
    assert status == 201, body
    person = str(DATA / "darknet_person.jpg")
    raw = ["-H", "Content-Type: image/jpeg", "--data-binary", f"@{person}"]
    status, body = curl(*raw, f"{upload}?name=porch.jpg")
    assert status == 201 and '"name":"porch.jpg"' in body.replace(" ", ""), body
    for event in (*journey.decided("opencv_vtest_f0750.jpg"), *journey.decided("porch.jpg")):
        assert event["source"] == "http" and event["outcome"] != "error", event

    # What the README says of pictures that are not JPEG or PNG.
    text = ["-H", "Content-Type: text/plain", "--data-binary", "not a picture"]
    assert curl(*text, upload)[0] == 415
    note = ROOT / "pyproject.toml"
    assert curl("-F", f"file=@{note}", upload)[0] == 415
    mislabelled = ["-H", "Content-Type: image/jpeg", "--data-binary", "not a picture"]
    assert curl(*mislabelled, f"{upload}?name=mislabelled.jpg")[0] == 415


def test_repeated_frame_is_skipped_with_a_reason_and_no_error_email(journey: Journey) -> None:
    address = ("127.0.0.1", journey.port("FTP server"))
    frame = picture("opencv_vtest_f0000.jpg")
    for count in (1, 2):  # as a user tries the quick start's command twice
        upload_with_ftplib(*address, "cam01", PASSWORD, "repeated.jpg", frame, True)
        journey.decided("repeated.jpg", count)
    first, second = journey.decided("repeated.jpg", count=2)
    assert first["outcome"] not in {"duplicate", "error"}, first
    assert second["outcome"] in {"duplicate", "skipped"}, second
    assert second["reason"], second
    assert not error_mails(journey), [m["Subject"] for m in error_mails(journey)]


def test_second_start_on_the_same_config_refuses_and_leaves_the_first_online(
    journey: Journey,
) -> None:
    second = subprocess.run(
        [*CLI, "-c", journey.config.name, "-n"],
        cwd=journey.folder,
        env=journey.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    said = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(said) == 1, second.stderr
    assert said[0].startswith("Another ipcam-analysis is already running with data_dir "), said
    assert "Traceback" not in second.stdout + second.stderr
    assert journey.process.process.poll() is None
    assert journey.broker.retained(AVAILABILITY) == b"online"


def test_burst_of_three_pictures_alerts_once_naming_the_alerting_picture(
    journey: Journey,
) -> None:
    names = ("burst-1.jpg", "burst-2.jpg", "burst-3.jpg")
    frames = ("opencv_vtest_f0000.jpg", "opencv_vtest_f0150.jpg", "opencv_vtest_f0300.jpg")
    message = camera_mail(
        [(name, picture(frame)) for name, frame in zip(names, frames, strict=True)],
        sender=f"{BURST_CAMERA}@cameras.lan",
    )
    send_camera_mail(journey, BURST_CAMERA, BURST_PASSWORD, message)
    events = [journey.decided(name, camera=BURST_CAMERA)[0] for name in names]
    assert {event["burst_size"] for event in events} == {3}
    assert "3 in one e-mail" in journey.api(f"/?camera={BURST_CAMERA}").text
    alerts = [event for event in events if event["outcome"] == "alert"]
    assert len(alerts) == 1, [(e["original_name"], e["outcome"], e["reason"]) for e in events]
    (alert,) = alerts
    for event in events:
        if event is not alert:
            assert event["outcome"] == "suppressed", event
            assert event["reason"].startswith("part of the burst alerted with "), event
            alert_file = Path(alert["original_name"]).name
            assert f"{alert_file} (event {alert['id']})" in event["reason"], event
    wait_until(lambda: alert_mails(journey, BURST_CAMERA), WAIT_SECONDS, "the burst's alert")
    assert len(alert_mails(journey, BURST_CAMERA)) == 1


def test_events_other_than_alerts_say_why(journey: Journey) -> None:
    """A picture with nothing of interest, and every event the steps before left: each event
    that did not alert says why on the dashboard."""
    address = ("127.0.0.1", journey.port("FTP server"))
    cup = picture("skimage_coffee.jpg")
    upload_with_ftplib(*address, "cam01", PASSWORD, "nothing-of-interest.jpg", cup, True)
    (event,) = journey.decided("nothing-of-interest.jpg")
    assert event["outcome"] == "no_match", event
    for camera in ("cam01", BURST_CAMERA):
        for event in journey.events(camera):
            if event["outcome"] != "alert":
                assert event["reason"], event


def test_misspelt_label_is_one_warning_suggesting_the_right_one(
    tmp_path: Path, moto_server: Moto, service_process: Any
) -> None:
    env = service_environment(moto_server)
    config = example_config_for_test(tmp_path / "misspelt", labels=["Persn"])
    process = service_process(["-c", config.name, "-n"], env, cwd=config.parent)
    wait_until(lambda: "Dashboard: http" in process.output, WAIT_SECONDS, "the dashboard")
    mentions = [line for line in process.lines if "Persn" in line]
    assert len(mentions) == 1, process.output
    assert "WARNING" in mentions[0] and "Person" in mentions[0].replace("Persn", ""), mentions


def headings(document: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings (outside code blocks)."""
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.DOTALL)
    titles = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in titles}


def test_readme_and_docs_links_lead_somewhere() -> None:
    """A new user follows the README's links into docs/: every file and heading they name exists."""
    broken = []
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https://, mailto:
            file, _, anchor = target.partition("#")
            linked = (document.parent / file).resolve() if file else document
            if not linked.exists() or (anchor and anchor not in headings(linked)):
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert not broken, broken
