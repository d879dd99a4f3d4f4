"""A real SmtpIngest on a loopback port that collects its Uploads, camera e-mails, and a TLS
certificate made with Debian's openssl."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from harness.ftp import camera_directory
from harness.intake import collecting_intake
from ipcam_analysis.ingest.context import CameraDirectory
from ipcam_analysis.ingest.smtp import SmtpIngest, SmtpServerConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import Upload

HOST = "127.0.0.1"
CAM02_SENDER = "ipc-cam02@cameras.example"  # cam02 e-mails without logging in
WAIT_SECONDS = 20.0


@dataclass
class RunningSmtp:
    """A started SmtpIngest and what it has queued so far (ids count from 1)."""

    settings: SmtpServerConfig
    cameras: CameraDirectory
    ingest: SmtpIngest | None = None
    fail_with: Exception | None = None  # when set, the callback raises it
    uploads: list[Upload] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def address(self) -> tuple[str, int]:
        assert self.ingest is not None
        return self.ingest.address

    def collect(self, uploads: Sequence[Upload]) -> list[int]:
        """The queue's put_many."""
        if self.fail_with is not None:
            raise self.fail_with
        with self.arrived:
            self.uploads.extend(uploads)
            self.arrived.notify_all()
            return list(range(len(self.uploads) - len(uploads) + 1, len(self.uploads) + 1))

    def wait_for_uploads(self, count: int) -> list[Upload]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.uploads) >= count, WAIT_SECONDS):
                pytest.fail(f"expected {count} upload(s), got {len(self.uploads)}")
            return list(self.uploads)


def camera_mail(
    pictures: Sequence[tuple[str, bytes]] = (),
    *,
    subject: str = "Alarm event: Motion Detection",
    text: str = "Alarm Event: Motion Detection\nAlarm Input Channel: 1\n",
    sender: str = "cam01@cameras.example",
    inline: bool = False,
    other: Sequence[tuple[str, str, bytes]] = (),
) -> EmailMessage:
    """A message as Dahua and Hikvision cameras write it: the event in the subject and text,
    JPEG attachments (or inline images); `other`: (name, MIME type, data) attachments."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "owner@example.com", subject
    message.set_content(text)
    for name, data in pictures:
        subtype = "png" if name.endswith(".png") else "jpeg"
        message.add_attachment(data, "image", subtype, filename=name)
        if inline:
            message.get_payload()[-1].replace_header("Content-Disposition", "inline")
    for name, kind, data in other:
        maintype, subtype = kind.split("/")
        message.add_attachment(data, maintype, subtype, filename=name)
    return message


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (certfile, keyfile)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def start_smtp(tmp_path: Path) -> Iterator[Any]:
    """Start an SmtpIngest with `SmtpServerConfig` overrides; cam01 and cam02 are cameras and
    cam02 may send without logging in from CAM02_SENDER. Failed logins wait 0.05 s, doubling."""
    started: list[SmtpIngest] = []

    def start(**overrides: Any) -> RunningSmtp:
        settings = SmtpServerConfig.model_validate(
            {"enabled": True, "host": HOST, "port": 0, **overrides}
        )
        cameras = camera_directory(tmp_path / "ftp", senders={CAM02_SENDER: "cam02"})
        running = RunningSmtp(settings, cameras)
        running.ingest = SmtpIngest(
            settings,
            cameras,
            collecting_intake(running.collect, tmp_path / "data"),
            login_throttle=LoginThrottle(first_delay_seconds=0.05, max_delay_seconds=0.2),
        )
        running.ingest.start()
        started.append(running.ingest)
        return running

    yield start
    for ingest in started:
        ingest.stop()
