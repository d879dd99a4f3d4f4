"""One camera's FTP session: its login, its limits, each STOR refused or queued before the reply,
in plain FTP or FTPS (pyftpdlib's hooks, each a few lines)."""

from __future__ import annotations

import hmac
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from weakref import WeakSet

from OpenSSL import SSL
from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.log import logger as pyftpdlib_logger

from ipcam_analysis.ingest.file_names import REOLINK_TEST_FOLDER, file_name_note
from ipcam_analysis.ingest.ftp_files import (
    CameraDTPHandler,
    CameraFilesystem,
    CameraTlsDTPHandler,
    camera_name,
    spool_copy,
    spool_home,
)
from ipcam_analysis.ingest.handoff import NotAccepted, Refusal, UploadIntake
from ipcam_analysis.ingest.throttle import LoginThrottle, SessionShares
from ipcam_analysis.ingest.tls import tls_failure
from ipcam_analysis.values import Upload

log = logging.getLogger("ipcam_analysis.ingest.ftp")  # one log for the server and its sessions

IDLE_TIMEOUT_SECONDS = 60
# The intake's refusals in FTP's words (RFC 959). A 4xx is temporary: cameras keep the
# snapshot, or try again at their next alarm.
REPLIES = {
    Refusal.QUEUE_FULL: "452 Too many uploads waiting for analysis; try again later.",
    Refusal.DISK_FULL: "452 Insufficient storage space on the server; try again later.",
    Refusal.NOT_STORED: "451 The upload could not be stored; try again later.",
    # Instead of 226 when the queue cannot take the file: "not done, try again".
    Refusal.NOT_QUEUED: "451 The upload could not be queued for analysis; try again later.",
}
TOO_MANY_SESSIONS = "421 Too many connections at once; try again later."


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
    intake: UploadIntake
    remove_files: bool
    login_throttle: LoginThrottle
    open_sessions: WeakSet[FTPHandler]
    sessions: SessionShares[FTPHandler]
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
        self.auth_failed_timeout = self.login_throttle.failed_login(
            self.remote_ip, self.username, "FTP", log
        )
        super().handle_auth_failed(msg, password)

    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:
        # APPE comes here too. Refused before any byte is sent: a camera tries a 4xx again later.
        return None if self._refused() else super().ftp_STOR(file, mode)

    def ftp_STOU(self, line: str) -> str | None:
        return None if self._refused() else super().ftp_STOU(line)

    def _refused(self) -> bool:
        refusal = self.intake.refusal()
        if refusal is not None:
            self.respond(REPLIES[refusal])
        return refusal is not None

    def queue_received_file(self, file: str) -> str | None:
        """Called by the data channel before it replies: None once the upload's queue row is
        committed, else the reply refusing it (the camera sends it again)."""
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
            return REPLIES[Refusal.NOT_STORED]
        size = upload.path.stat().st_size
        log.info(
            "Upload from %s (%s): %s (%d bytes)",
            upload.camera,
            upload.remote_ip,
            upload.original_name,
            size,
        )
        try:
            self.intake.accept([upload])
        except NotAccepted as refused:  # logged by the intake
            return REPLIES[refused.refusal]
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


def say_busy_and_close(session: FTPHandler) -> None:
    session.respond(TOO_MANY_SESSIONS)
    session.close_when_done()
