"""The cameras' FTP server: its settings, its listener and IO thread; each camera's session is in
ftp_session.py, where its bytes go in ftp_files.py."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any
from weakref import WeakSet

from OpenSSL import SSL
from pydantic import Field, SecretStr, field_validator, model_validator
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.ftp_files import SPOOL_FOLDER
from ipcam_analysis.ingest.ftp_session import (
    CameraAuthorizer,
    CameraFtpHandler,
    CameraFtpsHandler,
    say_busy_and_close,
)
from ipcam_analysis.ingest.handoff import UploadIntake
from ipcam_analysis.ingest.throttle import MAX_SESSIONS, LoginThrottle, SessionShares
from ipcam_analysis.ingest.tls import TlsConfig, certificate_files, old_versions_ciphers
from ipcam_analysis.net.limits import ACCEPT_RETRY_SECONDS, OUT_OF_RESOURCES, OutOfFilesLog
from ipcam_analysis.settings import ConfigPath, StrictModel

log = logging.getLogger(__name__)

# CWD, LIST/NLST/SIZE/MDTM (some cameras probe before uploading), MKD and STOR; no reading back.
CAMERA_PERMISSIONS = "elmw"
# pyftpdlib's bound on its sockets: each session and its data connection, and the listener.
MAX_SOCKETS = 2 * MAX_SESSIONS + 1
POLL_SECONDS = 0.2  # how long stop() may wait for the IO thread to notice it
STOP_TIMEOUT_SECONDS = 10
ADMISSION_CHECK_SECONDS = 1.0  # while refusing, how often to look whether uploads may resume
TLS_VERSIONS = {
    "1.0": SSL.TLS1_VERSION,
    "1.1": SSL.TLS1_1_VERSION,
    "1.2": SSL.TLS1_2_VERSION,
    "1.3": SSL.TLS1_3_VERSION,
}


class FtpServerConfig(StrictModel):
    """`ftp_server:`; its users are the cameras, for every source, and root_dir the folder
    their uploads wait in until analysed, whichever source received them."""

    root_dir: ConfigPath = Field(Path("ftp"), validate_default=True)
    host: str = "0.0.0.0"
    port: int = Field(2121, ge=0, le=65535)  # 0: any free port (tests)
    remove_files: bool = True
    users: dict[str, SecretStr] = Field(default_factory=dict)
    passive_ports: tuple[int, int] | None = None
    masquerade_address: str | None = None
    # Back-pressure: past these, STOR is answered 452 (cameras try again) instead of piling up.
    max_queued_uploads: int = Field(10_000, ge=1)
    min_free_mb: float = Field(50, ge=0)  # on root_dir and data_dir; 0 turns the check off
    tls: TlsConfig = Field(default_factory=TlsConfig)  # explicit FTPS (AUTH TLS) on the same port

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

    @property
    def enabled(self) -> bool:
        """Always: the cameras' FTP server is the one source that cannot be switched off."""
        return True


class FtpIngestError(UserError):
    """The FTP server cannot start; the message is one line for the user."""


def tls_attributes(tls: TlsConfig, self_signed_dir: Path | None) -> dict[str, Any]:
    """The TLS handler's class attributes; its context is made now, so that a bad certificate
    stops the start rather than the first camera's session."""
    certfile, keyfile = certificate_files(tls, "FTP", self_signed_dir)
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_options(TLS_FTPHandler.ssl_options)
    context.set_min_proto_version(TLS_VERSIONS[tls.min_version])
    ciphers = old_versions_ciphers(tls, "The FTP server")
    if ciphers is not None:
        context.set_cipher_list(ciphers.encode())
    try:
        context.use_certificate_chain_file(str(certfile))
        context.use_privatekey_file(str(keyfile))
        context.check_privatekey()
    except SSL.Error as exc:
        raise FtpIngestError(
            f"cannot use the FTP TLS certificate {certfile} with the key {keyfile}: {exc}"
        ) from None
    required = tls.mode == "required"  # pyftpdlib then answers 550 to USER, PASV, ... in clear
    return {"ssl_context": context, "tls_control_required": required, "tls_data_required": required}


class CameraFtpServer(FTPServer):
    """pyftpdlib's server, whose listener outlives running out of descriptors (pyftpdlib's
    own closes for good on EMFILE, and FTP is then refused until a restart)."""

    out_of_files = OutOfFilesLog("The FTP server")

    def handle_accept(self) -> None:
        try:
            super().handle_accept()
        except OSError as exc:
            if exc.errno not in OUT_OF_RESOURCES:
                raise
            self.out_of_files.note(exc)
            # The waiting connection keeps the listener readable: unwatched for a while (still
            # registered, so that stopping closes it), or the IO loop would spin on it.
            self.ioloop.modify(self._fileno, 0)
            self.ioloop.call_later(ACCEPT_RETRY_SECONDS, self._accept_again)

    def handle_error(self) -> None:
        # Any other failure closes the listener as pyftpdlib does (the watchdog then has the
        # service restarted), in one line rather than pyftpdlib's traceback.
        log.error("The FTP server stopped listening: %s", sys.exc_info()[1])
        log.debug("The FTP listener's failure", exc_info=True)
        self.close()

    def _accept_again(self) -> None:
        if self._fileno is not None:  # not closed meanwhile
            self.ioloop.modify(self._fileno, self.ioloop.READ)


def make_handler_class(
    settings: FtpServerConfig,
    intake: UploadIntake,
    login_throttle: LoginThrottle,
    tls_dir: Path | None,
) -> type[CameraFtpHandler]:
    """A handler class for one server: its cameras, limits and intake (homes must exist); a
    self-signed certificate is made in `tls_dir` when TLS is on without a certfile."""
    authorizer = CameraAuthorizer()
    for camera, password in settings.users.items():
        home = settings.root_dir / camera
        authorizer.add_user(camera, password.get_secret_value(), str(home), perm=CAMERA_PERMISSIONS)
    ports = settings.passive_ports
    attributes: dict[str, Any] = {
        "authorizer": authorizer,
        "passive_ports": range(ports[0], ports[1] + 1) if ports else None,
        "masquerade_address": settings.masquerade_address,
        "intake": intake,
        "remove_files": settings.remove_files,
        "login_throttle": login_throttle,
        "open_sessions": WeakSet(),
        "sessions": SessionShares[FTPHandler](say_busy_and_close),
    }
    if settings.tls.mode == "off":
        return type("ConfiguredCameraFtpHandler", (CameraFtpHandler,), attributes)
    attributes.update(tls_attributes(settings.tls, tls_dir))
    return type("ConfiguredCameraFtpsHandler", (CameraFtpsHandler,), attributes)


class FtpIngest:
    """Serves the cameras' FTP sessions in one IO thread; hands each finished file to the intake.

    The intake runs in the IO thread, so it must be quick (one transaction, no analysis); its
    admission check refuses uploads beyond the queue's or the disk's room before any byte.
    `tls_dir`: where a self-signed certificate is made.
    """

    def __init__(
        self,
        settings: FtpServerConfig,
        intake: UploadIntake,
        *,
        login_throttle: LoginThrottle | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self._settings = settings
        self._intake = intake
        self._tls_dir = tls_dir
        self._login_throttle = login_throttle or LoginThrottle()
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the port is the kernel's choice when 0 was asked."""
        if self._address is None:
            raise RuntimeError("the FTP server is not started")
        return self._address

    def start(self) -> None:
        """Create the cameras' homes, bind, and serve in a daemon thread."""
        settings = self._settings
        for camera in settings.users:
            if camera in ("", "..", SPOOL_FOLDER) or Path(camera).name != camera:
                raise FtpIngestError(f"camera name {camera!r} cannot be used as a folder name")
            home = settings.root_dir / camera
            try:
                home.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FtpIngestError(
                    f"cannot create the FTP folder {home}: {exc.strerror}"
                ) from None
        handler = make_handler_class(settings, self._intake, self._login_throttle, self._tls_dir)
        _keep_pyftpdlib_logging_default()
        # An IO loop of our own: pyftpdlib's global one is shared by every server in the process.
        ioloop = IOLoop()
        try:
            server = CameraFtpServer((settings.host, settings.port), handler, ioloop=ioloop)
        except OSError as exc:
            ioloop.close()
            raise FtpIngestError(
                f"cannot listen for FTP on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        server.max_cons = MAX_SOCKETS  # sessions per address: CameraFtpHandler.sessions
        host, port = server.address
        self._address = (host, port)
        self._thread = threading.Thread(target=self._serve, args=(server,), name="ftp", daemon=True)
        self._thread.start()
        log.info(
            "FTP server listening on %s:%d for %d camera(s), TLS %s",
            host,
            port,
            len(settings.users),
            settings.tls.mode,
        )

    def stop(self) -> None:
        """Close the listener and every session and wait for the IO thread; safe from any thread."""
        self._stopping.set()
        if self._thread is None:
            return
        self._thread.join(STOP_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            log.warning("The FTP server thread did not stop within %d s", STOP_TIMEOUT_SECONDS)

    def _serve(self, server: FTPServer) -> None:
        # pyftpdlib's IO loop is not thread-safe, so stop() only sets a flag the loop polls for,
        # and the loop's own thread closes every socket.
        next_call: float | None = None
        next_admission_check = 0.0
        try:
            while not self._stopping.is_set():
                wait = POLL_SECONDS if next_call is None else min(next_call, POLL_SECONDS)
                try:
                    # A refusing episode ends in the log when room is back, not at the next STOR.
                    if time.monotonic() >= next_admission_check:
                        self._intake.recheck_refusal()
                        next_admission_check = time.monotonic() + ADMISSION_CHECK_SECONDS
                    next_call = server.ioloop.loop(timeout=wait, blocking=False)
                except Exception:
                    log.exception("Unexpected error in the FTP server; it carries on")
                    next_call = None
        finally:
            # Sessions first: one waiting out a failed-login delay is not in the IO loop, and
            # close_all() would drop the only strong reference to it, leaving its socket open.
            for session in list(server.handler.open_sessions):
                session.close()
            server.close_all()
            log.info("FTP server stopped")


def _keep_pyftpdlib_logging_default() -> None:
    # pyftpdlib adds its own stderr handler (and turns off some logging record fields for the
    # whole process) when it finds no handler; a NullHandler keeps records flowing to ours.
    library_logger = logging.getLogger("pyftpdlib")
    if not any(isinstance(h, logging.NullHandler) for h in library_logger.handlers):
        library_logger.addHandler(logging.NullHandler())
