"""The cameras' SMTP server: a camera e-mails its snapshots; each picture becomes an Upload."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
import tempfile
import warnings
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from weakref import WeakSet

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException
from pydantic import Field

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.context import CameraDirectory
from ipcam_analysis.ingest.handoff import AcceptUploads, queue_uploads
from ipcam_analysis.ingest.loop import ServerThread
from ipcam_analysis.ingest.mail import UnreadableMail, read_mail, write_uploads
from ipcam_analysis.ingest.throttle import LoginThrottle, SessionShares
from ipcam_analysis.ingest.tls import (
    TlsConfig,
    certificate_files,
    old_versions_ciphers,
    tls_failure,
)
from ipcam_analysis.settings import StrictModel

log = logging.getLogger(__name__)

MB = 1024 * 1024
IDLE_TIMEOUT_SECONDS = 60
MAX_RECIPIENTS = 20
QUEUE_THREADS = 4  # parse, write and queue messages off the IO loop
LOGGED_LOGIN_FAILURES = 10  # then every hundredth, as for FTP
TOO_MANY_SESSIONS = b"421 4.3.2 The server is busy (too many connections); try again later\r\n"
UNKNOWN_SENDER = (
    "550 5.7.1 Unknown sender: log in with the camera's name and password,"
    " or list this address as the camera's smtp_from"
)
NOT_QUEUED = "451 4.3.0 The pictures could not be queued; try again later"
NOT_SPOOLED = "451 4.3.0 The message could not be stored; try again later"
TOO_MUCH_DATA = "552 Error: Too much mail data"  # aiosmtpd's words, as push() expects them
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
# A message being received is kept in memory up to this, then in a file: sessions held in the
# middle of big messages cost little memory, however many they are (each address has its share).
SPOOL_IN_MEMORY_BYTES = 256 * 1024
UNREADABLE = "554 5.6.0 The message cannot be read ({}); not queued, do not send it again"
TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


class SmtpServerConfig(StrictModel):
    """`smtp_server:`; cameras log in with their ftp_server.users name and password."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(2525, ge=0, le=65535)  # 0: any free port (tests)
    tls: TlsConfig = Field(default_factory=TlsConfig)  # STARTTLS
    max_message_mb: float = Field(25, gt=0)


class SmtpIngestError(UserError):
    """The SMTP server cannot start; the message is one line for the user."""


class CameraMailHandler:
    """aiosmtpd's hooks: who may send, and each message's pictures into the queue."""

    def __init__(
        self,
        cameras: CameraDirectory,
        accept_uploads: AcceptUploads,
        login_throttle: LoginThrottle,
        admission: UploadAdmission,
    ) -> None:
        self._cameras = cameras
        self._accept_uploads = accept_uploads
        self.login_throttle = login_throttle
        self._admission = admission
        self._passwords = {
            name: pw.get_secret_value().encode() for name, pw in cameras.passwords.items()
        }
        self._warned_cleartext: set[str] = set()
        # An address's oldest idle session makes room for a newcomer: see SessionShares.
        self.sessions = SessionShares[SMTP](say_busy_and_close)
        self.open_sessions: WeakSet[SMTP] = WeakSet()  # closed by stop()
        self._queueing = ThreadPoolExecutor(QUEUE_THREADS, thread_name_prefix="smtp-queue")

    def close(self) -> None:
        self._queueing.shutdown(wait=True)

    def close_sessions(self) -> None:
        for session in list(self.open_sessions):
            if session.transport is not None:
                session.transport.close()

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        camera = data.login.decode("utf-8", "replace")
        expected = self._passwords.get(camera)
        # Compared even for an unknown camera, so the answer's timing tells nothing.
        matches = hmac.compare_digest(expected or b"\0" * 32, data.password)
        if expected is None or not matches:
            session.failed_login = camera  # answered after the throttle's delay (CameraSmtp)
            return AuthResult(success=False, handled=False)
        if session.ssl is None and camera not in self._warned_cleartext:
            self._warned_cleartext.add(camera)
            log.warning(
                "Camera %s sent its password without TLS (from %s): anyone on the network"
                " can read it; set smtp_server.tls if the camera can use STARTTLS",
                camera,
                peer_ip(session),
            )
        return AuthResult(success=True, auth_data=camera)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        ip = peer_ip(session)
        camera = session.auth_data if session.authenticated else None
        camera = camera or self._cameras.senders.get(address.lower())
        if camera is None:
            log.warning("E-mail refused from unknown sender %r at %s", address, ip)
            return UNKNOWN_SENDER
        refusal = self._admission.refusal()
        if refusal is not None:
            log.warning("E-mail from %s (%s) refused for now: %s", camera, ip, refusal[4:])
            return f"452 4.3.1 {refusal[4:]}"
        session.camera = camera
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Every recipient is "us": nothing is ever forwarded, so this is never a relay.
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def spool(self) -> tempfile.SpooledTemporaryFile[bytes]:
        """Where a message being received goes: memory, then a file beside the pictures."""
        return tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY_BYTES, dir=self._cameras.root_dir)

    async def receive_mail(self, session: Session, message: IO[bytes]) -> str:
        """The reply to a message received whole: its pictures queued, or why not."""
        camera, ip = session.camera, peer_ip(session)
        loop = asyncio.get_running_loop()
        try:
            ids = await loop.run_in_executor(self._queueing, self.queue_mail, camera, ip, message)
        except UnreadableMail as exc:  # sent again, it would fail again: refused for good
            log.warning("E-mail from %s (%s) refused: %s", camera, ip, exc)
            return UNREADABLE.format(exc)
        except Exception as exc:  # the loop serves every camera: it must survive this
            log.error(
                "Could not queue the e-mail from %s (%s): %s",
                camera,
                ip,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return NOT_QUEUED
        return f"250 2.0.0 Queued as {' '.join(map(str, ids))}"

    def queue_mail(self, camera: str, ip: str, message: IO[bytes]) -> list[int]:
        """Every picture of the message written and queued in one transaction; the queue ids,
        once committed. If any cannot be queued, none is and no file is left: the camera
        hears 451 and sends the whole message again, each picture once, in one burst."""
        mail = read_mail(message)
        home = self._cameras.root_dir / camera
        uploads = write_uploads(mail, camera, home, ip, datetime.now().astimezone())
        ids = queue_uploads(uploads, self._accept_uploads)
        if mail.pictures:
            log.info("E-mail from %s (%s): %d picture(s) queued", camera, ip, len(ids))
        else:
            log.info("E-mail without a picture from %s (%s): a connection test", camera, ip)
        return ids


def say_busy_and_close(session: SMTP) -> None:
    transport = session.transport
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(TOO_MANY_SESSIONS)
        transport.close()


def peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


class CameraSmtp(SMTP):
    """One SMTP session: limits per address, slow answers to bad logins, clear log lines."""

    event_handler: CameraMailHandler
    _counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starting = self.transport is None  # not the switch to TLS within a session
        super().connection_made(transport)
        if not starting:
            return
        assert self.session is not None and self._handler_coroutine is not None
        self.event_handler.open_sessions.add(self)
        self.session.camera = None
        self.session.failed_login = None
        ip = peer_ip(self.session)
        if self.event_handler.sessions.admit(ip, self):
            self._counted = True
            return
        refused = self.event_handler.sessions.refused_in_a_row(ip)
        if refused == 1 or refused % 100 == 0:
            log.warning(
                "SMTP connection from %s refused: too many at once (%d so far)", ip, refused
            )
        self._handler_coroutine.cancel()  # before it greets
        say_busy_and_close(self)

    def connection_lost(self, error: Exception | None) -> None:
        assert self.session is not None
        if self._counted:
            self._counted = False
            self.event_handler.sessions.release(peer_ip(self.session), self)
            if self.envelope is not None and self.envelope.mail_from:
                log.warning(
                    "E-mail from %s (%s) cut off before its end: nothing queued",
                    self.session.camera,
                    peer_ip(self.session),
                )
        super().connection_lost(error)

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd logs a traceback for each; a camera's failed STARTTLS is one line.
        ip = peer_ip(self.session) if self.session is not None else ""
        if isinstance(error, TLSSetupException):
            log.warning("STARTTLS with %s failed: %s", ip, tls_failure(error))
            return "454 4.7.0 TLS not available"  # the connection is closed anyway
        log.error(
            "SMTP session with %s failed: %s: %s",
            ip,
            type(error).__name__,
            error,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return "500 5.0.0 Error: the server could not handle this"

    async def push(self, status: bytes | str) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        session = self.session
        if text.startswith("552") and session is not None:
            # At MAIL FROM (a SIZE announced) the camera is known only by its login so far.
            camera = session.camera or (session.auth_data if session.authenticated else None)
            log.warning(
                "E-mail from %s (%s) refused: larger than smtp_server.max_message_mb",
                camera or "an unknown sender",
                peer_ip(session),
            )
        await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message spooled (see SPOOL_IN_MEMORY_BYTES) where aiosmtpd
        keeps every line of it in memory until the end."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None and self.session is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        with self.event_handler.spool() as message:
            reply = await self._receive_message(message)
            if reply is None:
                message.seek(0)
                reply = await self.event_handler.receive_mail(self.session, message)
        self._set_post_data_state()
        await self.push(reply)

    async def _receive_message(self, message: IO[bytes]) -> str | None:
        """The lines up to the lone dot into `message`, dots unstuffed (RFC 5321 4.5.2); else
        the refusal, sent once the message has ended all the same (RFC 5321 4.2.5)."""
        refusal: str | None = None
        size, limit = 0, self.data_size_limit
        in_long_line = False  # the rest of a line longer than the reader's limit comes next
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
                refusal, in_long_line = refusal or LINE_TOO_LONG, True
                continue
            if line == b".\r\n" and not in_long_line:
                return refusal
            in_long_line = False
            size += len(line)
            if limit and size > limit:
                refusal = refusal or TOO_MUCH_DATA
            if refusal is None:
                refusal = self._spool_line(message, line[1:] if line[:1] == b"." else line)

    def _spool_line(self, message: IO[bytes], line: bytes) -> str | None:
        try:
            message.write(line)
        except OSError as exc:  # the disk is full: the camera tries again later
            assert self.session is not None
            log.error(
                "Could not store the e-mail from %s (%s): %s",
                self.session.camera,
                peer_ip(self.session),
                exc,
            )
            return NOT_SPOOLED
        return None

    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._slow_if_failed(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._slow_if_failed(await super().auth_LOGIN(_, args))

    async def _slow_if_failed(self, result: AuthResult) -> AuthResult:
        """The same escalating delay per address as FTP logins, before the 535."""
        assert self.session is not None
        ip, throttle = peer_ip(self.session), self.event_handler.login_throttle
        if result.success:
            throttle.forget(ip)
            return result
        camera, self.session.failed_login = self.session.failed_login, None
        if camera is None:  # a malformed exchange, already answered
            return result
        delay = throttle.delay_after_failure(ip)
        failures = throttle.failures(ip)
        if failures <= LOGGED_LOGIN_FAILURES:
            log.warning("Failed SMTP login for camera %s from %s", camera, ip)
        elif failures % 100 == 0:
            log.warning("%d failed SMTP logins in a row from %s (last %s)", failures, ip, camera)
        await asyncio.sleep(delay)
        return result


def tls_context(settings: TlsConfig, self_signed_dir: Path | None) -> ssl.SSLContext | None:
    """STARTTLS with the configured certificate, or the self-signed one made in
    self_signed_dir (data_dir/tls)."""
    if settings.mode == "off":
        return None
    certfile, keyfile = certificate_files(settings, "SMTP", self_signed_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with warnings.catch_warnings():  # Python deprecates naming TLS 1.0 and 1.1; opted in here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[settings.min_version]
    ciphers = old_versions_ciphers(settings, "The SMTP server")
    if ciphers is not None:
        context.set_ciphers(ciphers)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise SmtpIngestError(
            f"smtp_server.tls: cannot use {certfile} and {keyfile}: {exc}"
        ) from None
    return context


class SmtpIngest:
    """Serves the cameras' SMTP sessions on an asyncio loop in one thread."""

    def __init__(
        self,
        settings: SmtpServerConfig,
        cameras: CameraDirectory,
        accept_uploads: AcceptUploads,
        *,
        login_throttle: LoginThrottle,
        admission: UploadAdmission,
        tls_dir: Path | None = None,
    ) -> None:
        """`tls_dir`: where a self-signed certificate is made when tls has no certfile."""
        self._settings = settings
        self._cameras = cameras
        self._tls_dir = tls_dir
        self._handler = CameraMailHandler(cameras, accept_uploads, login_throttle, admission)
        self._address: tuple[str, int] | None = None
        self._thread = ServerThread("smtp")

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the SMTP server is not started")
        return self._address

    def start(self) -> None:
        settings, root_dir = self._settings, self._cameras.root_dir
        context = tls_context(settings.tls, self._tls_dir)
        required = settings.tls.mode == "required"
        try:
            root_dir.mkdir(parents=True, exist_ok=True)  # messages are spooled there
        except OSError as exc:
            raise SmtpIngestError(
                f"cannot make the folder {root_dir}: {exc.strerror or exc}"
            ) from None
        # aiosmtpd logs every connection at INFO, and a deprecation warning at each login that
        # its own AUTH code causes; our hooks log what matters.
        library_log = logging.getLogger("mail.log")
        if library_log.level == logging.NOTSET:
            library_log.setLevel(logging.ERROR)

        def listen(loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, asyncio.AbstractServer]:
            def session() -> CameraSmtp:
                return CameraSmtp(
                    self._handler,
                    data_size_limit=int(settings.max_message_mb * MB),
                    hostname=socket.gethostname(),
                    tls_context=context,
                    require_starttls=required,
                    auth_require_tls=required,
                    authenticator=self._handler.authenticate,
                    timeout=IDLE_TIMEOUT_SECONDS,
                    loop=loop,
                )

            return loop.create_server(session, settings.host, settings.port)

        try:
            self._address = self._thread.start(listen)
        except OSError as exc:
            raise SmtpIngestError(
                f"cannot listen for SMTP on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        log.info(
            "SMTP server listening on %s:%d for %d camera(s), TLS %s",
            *self._address,
            len(self._cameras.passwords),
            settings.tls.mode,
        )

    def stop(self) -> None:
        """Close the listener and every session; a message not answered yet is not acknowledged."""
        self._thread.stop(self._handler.close_sessions)
        self._handler.close()
        if self._address is not None:
            log.info("SMTP server stopped")
