"""The cameras' FTP server: authenticate each camera, accept its file, hand it on as an Upload."""

from __future__ import annotations

import hmac
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from weakref import WeakSet

from OpenSSL import SSL
from pydantic import Field, SecretStr, field_validator, model_validator
from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.log import logger as pyftpdlib_logger
from pyftpdlib.servers import FTPServer

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.file_names import REOLINK_TEST_FOLDER, file_name_note
from ipcam_analysis.ingest.ftp_files import (
    SPOOL_FOLDER,
    CameraDTPHandler,
    CameraFilesystem,
    CameraTlsDTPHandler,
    camera_name,
    spool_copy,
    spool_home,
)
from ipcam_analysis.ingest.handoff import AcceptUploads, queue_upload
from ipcam_analysis.ingest.throttle import MAX_SESSIONS, LoginThrottle, SessionShares
from ipcam_analysis.ingest.tls import (
    TlsConfig,
    certificate_files,
    old_versions_ciphers,
    tls_failure,
)
from ipcam_analysis.net.limits import ACCEPT_RETRY_SECONDS, OUT_OF_RESOURCES, OutOfFilesLog
from ipcam_analysis.settings import ConfigPath, StrictModel
from ipcam_analysis.values import Upload

log = logging.getLogger(__name__)

# CWD, LIST/NLST/SIZE/MDTM (some cameras probe before uploading), MKD and STOR; no reading back.
CAMERA_PERMISSIONS = "elmw"
IDLE_TIMEOUT_SECONDS = 60
# pyftpdlib's bound on its sockets: each session and its data connection, and the listener.
MAX_SOCKETS = 2 * MAX_SESSIONS + 1
TOO_MANY_SESSIONS = "421 Too many connections at once; try again later."
POLL_SECONDS = 0.2  # how long stop() may wait for the IO thread to notice it
STOP_TIMEOUT_SECONDS = 10
ADMISSION_CHECK_SECONDS = 1.0  # while refusing, how often to look whether uploads may resume
# Failed logins in a row from one address logged one by one; after that, every hundredth.
LOGGED_LOGIN_FAILURES = 10
# Instead of 226 when the queue cannot take the file: a 4xx says "not done, try again".
NOT_QUEUED_REPLY = "451 The upload could not be queued for analysis; try again later."
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


class CameraAuthorizer(DummyAuthorizer):
    """Checks passwords in constant time; a user called "anonymous" needs one too."""

    def validate_authentication(self, username: str, password: str, handler: object) -> None:
        known = self.has_user(username)
        expected = self.user_table[username]["pwd"] if known else ""
        if not (known and hmac.compare_digest(expected.encode(), password.encode())):
            raise AuthenticationFailed("Authentication failed.")


def folders_removable(commands: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """pyftpdlib's commands, RMD allowed to whoever may make a folder (it removes only empty
    ones): Reolink's FTP test removes the folder it made. Deleting files stays refused."""
    return {**commands, "RMD": {**commands["RMD"], "perm": "m"}}


class CameraFtpHandler(FTPHandler):
    """One camera's FTP session; `make_handler_class` sets the shared attributes per server."""

    banner = "ipcam_analysis ready"
    timeout = IDLE_TIMEOUT_SECONDS
    abstracted_fs = CameraFilesystem
    dtp_handler = CameraDTPHandler
    deliver_upload: AcceptUploads
    remove_files: bool
    login_throttle: LoginThrottle
    admission: UploadAdmission
    open_sessions: WeakSet[FTPHandler]
    sessions: SessionShares[FTPHandler]
    _failures_in_a_row = 0  # from the session's address, when its last login failed
    _counted = False
    # A session refused for too many connections is closed without on_connect().
    _test_folders: tuple[str, ...] = ()  # the camera's FTP test folders this session made
    proto_cmds = folders_removable(FTPHandler.proto_cmds)

    def handle(self) -> None:
        """Greets the camera if its address has room (see SessionShares)."""
        ip = self.remote_ip
        if self.sessions.admit(ip, self):
            self._counted = True
            super().handle()
            return
        refused = self.sessions.refused_in_a_row(ip)
        if refused == 1 or refused % 100 == 0:
            log.warning("FTP connection from %s refused: too many at once (%d so far)", ip, refused)
        say_busy_and_close(self)

    def close(self) -> None:
        if self._counted:
            self._counted = False
            self.sessions.release(self.remote_ip, self)
        super().close()

    # A session refused for too many connections is closed without on_connect().
    _test_folders: tuple[str, ...] = ()  # the camera's FTP test folders this session made
    proto_cmds = folders_removable(FTPHandler.proto_cmds)

    def on_connect(self) -> None:
        self.open_sessions.add(self)

    def on_disconnect(self) -> None:
        # A camera's FTP test folder left empty is not kept: one would pile up per test.
        for folder in self._test_folders:
            with suppress(OSError):
                os.rmdir(folder)

    def ftp_ALLO(self, line: str) -> None:
        # pyftpdlib's "202 No storage allocation necessary" is correct, yet Dahua (Empire Tech)
        # cameras hang up on a 202 here and try again forever.
        self.respond("200 ALLO OK, no storage allocation needed.")

    def ftp_MKD(self, path: str) -> str | None:
        made: str | None = super().ftp_MKD(path)
        if made is not None and REOLINK_TEST_FOLDER.fullmatch(os.path.basename(made)):
            self._test_folders = (*self._test_folders, made)
            log.info(
                "Camera %s (%s) runs its FTP test: folder %s made",
                self.username,
                self.remote_ip,
                self.fs.fs2ftp(made),
            )
        return made

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        # A NUL would reach the file system as a ValueError and end the session with a traceback.
        if "\0" in line:
            self.respond("501 Invalid character in the command.")
            return
        super().pre_process_command(line, cmd, arg)

    def on_login(self, username: str) -> None:
        self.login_throttle.forget(self.remote_ip)
        log.info("Camera %s logged in from %s", username, self.remote_ip)

    def handle_auth_failed(self, msg: str, password: str) -> None:
        # pyftpdlib answers a failed login only after auth_failed_timeout, via the IO loop's
        # scheduler; escalating it per IP slows password guessing even across reconnections.
        self.auth_failed_timeout = self.login_throttle.delay_after_failure(self.remote_ip)
        # Counted now: by the time the answer goes out, other sessions may have failed too.
        self._failures_in_a_row = self.login_throttle.failures(self.remote_ip)
        super().handle_auth_failed(msg, password)

    def on_login_failed(self, username: str, password: str) -> None:
        failures = self._failures_in_a_row
        # A password-guessing run would otherwise write one line per guess, for as long as it lasts.
        if failures <= LOGGED_LOGIN_FAILURES:
            log.warning("Failed FTP login for user %s from %s", username, self.remote_ip)
        elif failures % 100 == 0:
            log.warning(
                "%d failed FTP logins in a row from %s (last user %s); each is answered slowly",
                failures,
                self.remote_ip,
                username,
            )

    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:
        # APPE comes here too. Refused before any byte is sent: a camera tries a 4xx again later.
        return None if self._refused() else super().ftp_STOR(file, mode)

    def ftp_STOU(self, line: str) -> str | None:
        return None if self._refused() else super().ftp_STOU(line)

    def _refused(self) -> bool:
        reply = self.admission.refusal()
        if reply is not None:
            self.respond(reply)
        return reply is not None

    def queue_received_file(self, file: str) -> str | None:
        """Called by the data channel before it replies: None once the upload's queue row is
        committed, else the reply refusing it (the file stays, for the queue to take later)."""
        try:
            upload = self._upload(Path(file))
        except OSError as exc:  # the spool cannot take the kept file's copy
            log.error(
                "Could not queue the upload from %s (%s): %s (%s)",
                self.username,
                self.remote_ip,
                self._original_name(file),
                exc,
            )
            return NOT_QUEUED_REPLY
        size = upload.path.stat().st_size
        log.info(
            "Upload from %s (%s): %s (%d bytes)",
            upload.camera,
            upload.remote_ip,
            upload.original_name,
            size,
        )
        if queue_upload(upload, self.deliver_upload, log) is None:
            return NOT_QUEUED_REPLY  # the camera sends it again
        return None

    def on_incomplete_file_received(self, file: str) -> None:
        Path(file).unlink(missing_ok=True)
        if self.remove_files:
            with suppress(OSError):
                Path(file).parent.rmdir()  # its in-flight folder (see ftp_files)
        log.warning("Partial upload from %s deleted: %s", self.username, self._original_name(file))

    def log(self, msg: str, logfun: Callable[[str], None] = pyftpdlib_logger.info) -> None:
        # pyftpdlib reports every session, command and transfer at INFO; our hooks log the
        # events that matter, so its lines go to DEBUG (its warnings and errors stay as they are).
        super().log(msg, pyftpdlib_logger.debug if logfun == pyftpdlib_logger.info else logfun)

    def _on_dtp_connection(self) -> None:
        # Works around giampaolo/pyftpdlib#657 (open in 2.2): after PORT the data channel takes
        # over the connector's socket, yet the connector is kept and closed at the next PORT,
        # PASV or QUIT, unregistering its old fd number from the IO loop. By then that number
        # may belong to another session's data connection, whose upload then hangs.
        self._dtp_connector = None
        super()._on_dtp_connection()

    def _upload(self, file: Path) -> Upload:
        """The received file as queued: its own file (see ftp_files), deleted once handled."""
        home = Path(self.fs.root)
        path = file if self.remove_files else spool_copy(file, home)
        original_name = self._original_name(str(file))
        return Upload(
            camera=self.username,
            path=path,
            received_at=datetime.now().astimezone(),
            remote_ip=self.remote_ip,
            original_name=original_name,
            source=self.source_kind(),
            remove_when_done=True,
            home=home if self.remove_files else spool_home(home),
            note=file_name_note(original_name),
        )

    def _original_name(self, file: str) -> str:
        return camera_name(Path(file).relative_to(self.fs.root))

    def source_kind(self) -> str:
        """The source recorded on the upload: `ftps` when the picture crossed the network
        encrypted."""
        return "ftp"


class CameraFtpsHandler(CameraFtpHandler, TLS_FTPHandler):
    """A camera's session on a server that offers TLS (`AUTH TLS`, then `PROT P` for data)."""

    dtp_handler = CameraTlsDTPHandler
    proto_cmds = folders_removable(TLS_FTPHandler.proto_cmds)  # AUTH, PBSZ, PROT too

    def process_command(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        # pyftpdlib answers these 550 when TLS is required and missing; the log says who.
        if cmd == "USER" and self.tls_control_required and not self._ssl_established:
            log.warning("FTP login as %s from %s refused: TLS is required", args[0], self.remote_ip)
        elif cmd in ("PASV", "EPSV", "PORT", "EPRT") and self.tls_data_required and not self._prot:
            log.warning(
                "FTP transfer by %s from %s refused: the data channel is not protected (PROT P)",
                self.username,
                self.remote_ip,
            )
        super().process_command(cmd, *args, **kwargs)

    def handle_failed_ssl_handshake(self) -> None:
        # pyftpdlib logs this at INFO, which our log() turns to DEBUG; a camera that cannot
        # speak the server's TLS must show in the log.
        log.warning("TLS handshake with %s failed after AUTH TLS", self.remote_ip)
        super().handle_failed_ssl_handshake()

    def handle_error(self) -> None:
        # A TLS error mid-session (a renegotiation refused, a bad record) is the client's
        # doing: one line and the session closed, not pyftpdlib's "unhandled exception".
        error = sys.exc_info()[1]
        if not isinstance(error, SSL.Error):
            super().handle_error()
            return
        log.warning("TLS error with %s: %s; connection closed", self.remote_ip, tls_failure(error))
        self.close()

    def source_kind(self) -> str:
        return "ftps" if self._ssl_established and self._prot else "ftp"


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


def say_busy_and_close(session: FTPHandler) -> None:
    session.respond(TOO_MANY_SESSIONS)
    session.close_when_done()


def make_handler_class(
    settings: FtpServerConfig,
    accept_uploads: AcceptUploads,
    login_throttle: LoginThrottle,
    admission: UploadAdmission,
    tls_dir: Path | None,
) -> type[CameraFtpHandler]:
    """A handler class for one server: its cameras, limits and callback (homes must exist);
    a self-signed certificate is made in `tls_dir` when TLS is on without a certfile."""
    authorizer = CameraAuthorizer()
    for camera, password in settings.users.items():
        home = settings.root_dir / camera
        authorizer.add_user(camera, password.get_secret_value(), str(home), perm=CAMERA_PERMISSIONS)
    ports = settings.passive_ports
    attributes = {
        "authorizer": authorizer,
        "passive_ports": range(ports[0], ports[1] + 1) if ports else None,
        "masquerade_address": settings.masquerade_address,
        # staticmethod: a plain function stored on a class would receive the handler as `self`.
        "deliver_upload": staticmethod(accept_uploads),
        "remove_files": settings.remove_files,
        "login_throttle": login_throttle,
        "admission": admission,
        "open_sessions": WeakSet(),
        "sessions": SessionShares[FTPHandler](say_busy_and_close),
    }
    if settings.tls.mode == "off":
        return type("ConfiguredCameraFtpHandler", (CameraFtpHandler,), attributes)
    attributes.update(tls_attributes(settings.tls, tls_dir))
    return type("ConfiguredCameraFtpsHandler", (CameraFtpsHandler,), attributes)


class FtpIngest:
    """Serves the cameras' FTP sessions in one IO thread; hands each finished file to accept_uploads.

    accept_uploads runs in the IO thread, so it must be quick (put the upload in a queue and return).
    `admission` refuses uploads beyond the queue's or the disk's room; by default it watches
    the free space of root_dir only. `tls_dir`: where a self-signed certificate is made.
    """

    def __init__(
        self,
        settings: FtpServerConfig,
        accept_uploads: AcceptUploads,
        *,
        login_throttle: LoginThrottle | None = None,
        admission: UploadAdmission | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self._settings = settings
        self._tls_dir = tls_dir
        self._accept_uploads = accept_uploads
        self._login_throttle = login_throttle or LoginThrottle()
        self._admission = admission or UploadAdmission(
            settings.max_queued_uploads, lambda: 0, settings.min_free_mb, [settings.root_dir]
        )
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
        handler = make_handler_class(
            settings, self._accept_uploads, self._login_throttle, self._admission, self._tls_dir
        )
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
                    if self._admission.refusing and time.monotonic() >= next_admission_check:
                        self._admission.update()
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
