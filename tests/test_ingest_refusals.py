"""The intake's refusals (ingest/handoff.py), said by each protocol in its own words to a real
client: before an upload starts (the admission check) and once it is received (not kept, not
queued). No source reads another protocol's reply."""

from __future__ import annotations

import ftplib
import smtplib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.ftp import CAMERAS, camera_directory, upload_with_ftplib
from harness.mail_camera import camera_mail
from harness.service import DATA
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.handoff import NotAccepted, Received, Refusal
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.smtp import SmtpIngest, SmtpServerConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import Upload

JPEG = (DATA / "darknet_person.jpg").read_bytes()
WHY_NOT_WRITTEN = "No space left on device"  # what the system said, passed on by HTTP

FTP_REPLIES = {
    Refusal.QUEUE_FULL: "452 Too many uploads waiting for analysis; try again later.",
    Refusal.DISK_FULL: "452 Insufficient storage space on the server; try again later.",
    Refusal.NOT_STORED: "451 The upload could not be stored; try again later.",
    Refusal.NOT_QUEUED: "451 The upload could not be queued for analysis; try again later.",
}
SMTP_REPLIES = {
    Refusal.QUEUE_FULL: (452, "4.3.1 Too many uploads waiting for analysis; try again later."),
    Refusal.DISK_FULL: (452, "4.3.1 Insufficient storage space on the server; try again later."),
    Refusal.NOT_STORED: (451, "4.3.0 The message could not be stored; try again later"),
    Refusal.NOT_QUEUED: (451, "4.3.0 The pictures could not be queued; try again later"),
}
HTTP_BODIES = {  # each a 503 with Retry-After
    Refusal.QUEUE_FULL: "Too many uploads waiting for analysis; try again later.",
    Refusal.DISK_FULL: "Insufficient storage space on the server; try again later.",
    Refusal.NOT_STORED: f"The upload could not be written: {WHY_NOT_WRITTEN}",
    Refusal.NOT_QUEUED: "The upload could not be queued for analysis",
}
# The admission's refusals come before an upload starts, the others once it is received.
BEFORE_THE_UPLOAD = {Refusal.QUEUE_FULL, Refusal.DISK_FULL}


@dataclass
class RefusingIntake:
    """An intake saying `why` to every upload: asked before it starts, or once received."""

    why: Refusal

    @property
    def before(self) -> bool:
        return self.why in BEFORE_THE_UPLOAD

    def refusal(self) -> Refusal | None:
        return self.why if self.before else None

    def recheck_refusal(self) -> None:
        pass

    def accept(self, uploads: Sequence[Upload | Received]) -> list[int]:
        raise NotAccepted(self.why, WHY_NOT_WRITTEN)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Any]]:
    """The sources started by the test, stopped at its end."""
    started: list[Any] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[Any], server: Any) -> Any:
    server.start()
    servers.append(server)
    return server


@pytest.mark.parametrize("why", list(Refusal), ids=lambda why: why.name)
def test_ftp_says_each_refusal(tmp_path: Path, servers: list[Any], why: Refusal) -> None:
    settings = FtpServerConfig(
        root_dir=tmp_path / "ftp", host="127.0.0.1", users=CAMERAS
    ).model_copy(update={"port": 0})
    intake = RefusingIntake(why)
    host, port = start(servers, FtpIngest(settings, intake)).address
    with pytest.raises(ftplib.error_temp) as refused:
        upload_with_ftplib(host, port, "cam01", CAMERAS["cam01"], "a.jpg", JPEG)
    assert str(refused.value) == FTP_REPLIES[why]


@pytest.mark.parametrize("why", list(Refusal), ids=lambda why: why.name)
def test_smtp_says_each_refusal(tmp_path: Path, servers: list[Any], why: Refusal) -> None:
    settings = SmtpServerConfig(enabled=True, host="127.0.0.1").model_copy(update={"port": 0})
    intake = RefusingIntake(why)
    cameras = camera_directory(tmp_path / "ftp")
    source = start(servers, SmtpIngest(settings, cameras, intake, login_throttle=LoginThrottle()))
    with smtplib.SMTP(*source.address, timeout=20) as client:
        client.login("cam01", CAMERAS["cam01"])
        if intake.before:  # at MAIL FROM, before a byte of the message
            code, text = client.mail("cam01@cameras.example")
        else:
            assert client.mail("cam01@cameras.example")[0] == 250
            client.rcpt("owner@example.com")
            code, text = client.data(camera_mail([("a.jpg", JPEG)]).as_string())
    assert (code, text.decode()) == SMTP_REPLIES[why]


@pytest.mark.parametrize("why", list(Refusal), ids=lambda why: why.name)
def test_http_says_each_refusal(tmp_path: Path, servers: list[Any], why: Refusal) -> None:
    settings = HttpIngestConfig(enabled=True, host="127.0.0.1").model_copy(update={"port": 0})
    intake = RefusingIntake(why)
    cameras = camera_directory(tmp_path / "ftp")
    source = start(servers, HttpIngest(settings, cameras, intake, login_throttle=LoginThrottle()))
    answer = httpx.post(
        f"http://127.0.0.1:{source.address[1]}/upload",
        content=JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", CAMERAS["cam01"]),
        timeout=20,
    )
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    assert answer.text == HTTP_BODIES[why] + "\n"
