"""A real FtpIngest on a loopback port that collects its Uploads, and an ftplib camera for it."""

from __future__ import annotations

import ftplib
import io
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from harness.intake import collecting_intake
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.context import CameraDirectory
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.values import Upload

CAMERAS = {"cam01": "cam01-secret-pw", "cam02": "cam02-secret-pw"}


def camera_directory(root_dir: Path, **more: Any) -> CameraDirectory:
    """cam01 and cam02 as the sources know them, their uploads kept under root_dir; `more`:
    senders, serial_ids."""
    passwords = {name: SecretStr(password) for name, password in CAMERAS.items()}
    return CameraDirectory(passwords, root_dir, **more)


WAIT_SECONDS = 20.0


@dataclass
class RunningFtp:
    """A started FtpIngest and what it has handed on so far."""

    settings: FtpServerConfig
    login_throttle: LoginThrottle
    ingest: FtpIngest = field(init=False)
    fail_with: Exception | None = None  # when set, the callback records the upload, then raises it
    uploads: list[Upload] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def host(self) -> str:
        return self.ingest.address[0]

    @property
    def port(self) -> int:
        return self.ingest.address[1]

    def login(self, camera: str = "cam01") -> ftplib.FTP:
        """A logged-in ftplib session as that camera; use it in a `with` block."""
        return login_with_ftplib(self.host, self.port, camera, CAMERAS[camera])

    def home(self, camera: str) -> Path:
        return (self.settings.root_dir / camera).resolve()

    def collect(self, uploads: Sequence[Upload]) -> list[int]:
        """The queue's put_many: the uploads' numbers, as queue row ids would be."""
        with self.arrived:
            self.uploads.extend(uploads)
            self.arrived.notify_all()
            numbers = list(range(len(self.uploads) - len(uploads) + 1, len(self.uploads) + 1))
        if self.fail_with is not None:
            raise self.fail_with
        return numbers

    def wait_for_uploads(self, count: int, timeout: float = WAIT_SECONDS) -> list[Upload]:
        """The first `count` uploads; fails the test if they do not arrive in time."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.uploads) >= count, timeout):
                pytest.fail(f"{len(self.uploads)} of {count} uploads arrived in {timeout} s")
            return list(self.uploads[:count])


StartFtp = Callable[..., RunningFtp]


@pytest.fixture
def start_ftp(tmp_path: Path) -> Iterator[StartFtp]:
    """Starts an FtpIngest on 127.0.0.1:0 with cam01/cam02; keyword arguments override settings.

    `login_throttle=` replaces the default, which answers failed logins after 0.05 s so that
    tests stay fast; `tls_dir=` is where a self-signed certificate is made. Every server
    started is stopped at the end of the test.
    """
    started: list[FtpIngest] = []

    def start(
        login_throttle: LoginThrottle | None = None, tls_dir: Path | None = None, **overrides: Any
    ) -> RunningFtp:
        settings = FtpServerConfig(
            root_dir=tmp_path / "ftp", host="127.0.0.1", users=CAMERAS, **overrides
        ).model_copy(update={"port": 0})  # the model refuses port 0; FtpIngest must accept it
        throttle = login_throttle or LoginThrottle(first_delay_seconds=0.05, max_delay_seconds=0.2)
        running = RunningFtp(settings, throttle)
        # The service's admission, watching the free space of root_dir only.
        admission = UploadAdmission(
            settings.max_queued_uploads, lambda: 0, settings.min_free_mb, [settings.root_dir]
        )
        intake = collecting_intake(running.collect, tmp_path / "data", admission)
        running.ingest = FtpIngest(settings, intake, login_throttle=throttle, tls_dir=tls_dir)
        running.ingest.start()
        started.append(running.ingest)
        return running

    yield start
    for ingest in started:
        ingest.stop()


@pytest.fixture
def ftp_ingest(start_ftp: StartFtp) -> RunningFtp:
    """A running FtpIngest with the default test settings (cameras cam01 and cam02)."""
    return start_ftp()


def upload_with_ftplib(
    host: str,
    port: int,
    user: str,
    password: str,
    remote_path: str,
    data: bytes,
    passive: bool = True,
) -> None:
    """Upload as a camera does: log in, enter (making if needed) each folder, STOR, QUIT."""
    with login_with_ftplib(host, port, user, password) as ftp:
        ftp.set_pasv(passive)
        *folders, name = remote_path.strip("/").split("/")
        for folder in folders:
            try:
                ftp.cwd(folder)
            except ftplib.error_perm:
                with suppress(ftplib.error_perm):  # another session may have just made it
                    ftp.mkd(folder)
                ftp.cwd(folder)
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def login_with_ftplib(host: str, port: int, user: str, password: str) -> ftplib.FTP:
    """A logged-in ftplib session (passive mode); use it in a `with` block."""
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=WAIT_SECONDS)
    try:
        ftp.login(user, password)
    except BaseException:
        ftp.close()
        raise
    return ftp
