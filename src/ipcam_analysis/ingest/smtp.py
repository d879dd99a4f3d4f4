"""The cameras' SMTP server: a camera e-mails its snapshots; each picture becomes an Upload. Who
may send and where a message goes are here; one session's protocol is in smtp_session.py."""

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

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import Field

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.context import CameraDirectory
from ipcam_analysis.ingest.handoff import NotAccepted, Refusal, UploadIntake
from ipcam_analysis.ingest.loop import ServerThread
from ipcam_analysis.ingest.mail import UnreadableMail, mail_uploads, read_mail
from ipcam_analysis.ingest.smtp_session import (
    REPLIES,
    CameraSession,
    CameraSmtp,
    peer_ip,
    say_busy_and_close,
)
from ipcam_analysis.ingest.throttle import LoginThrottle, SessionShares
from ipcam_analysis.ingest.tls import TlsConfig, certificate_files, old_versions_ciphers
from ipcam_analysis.settings import StrictModel

log = logging.getLogger(__name__)

MB = 1024 * 1024
IDLE_TIMEOUT_SECONDS = 60
MAX_RECIPIENTS = 20
QUEUE_THREADS = 4  # parse, write and queue messages off the IO loop
UNKNOWN_SENDER = (
    "550 5.7.1 Unknown sender: log in with the camera's name and password,"
    " or list this address as the camera's smtp_from"
)
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
        self, cameras: CameraDirectory, intake: UploadIntake, login_throttle: LoginThrottle
    ) -> None:
        self._cameras = cameras
        self._intake = intake
        self.login_throttle = login_throttle
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
        assert isinstance(session, CameraSession)  # CameraSmtp's
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
        self,
        server: SMTP,
        session: CameraSession,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        ip = peer_ip(session)
        camera = session.auth_data if session.authenticated else None
        camera = camera or self._cameras.senders.get(address.lower())
        if camera is None:
            log.warning("E-mail refused from unknown sender %r at %s", address, ip)
            return UNKNOWN_SENDER
        refusal = self._intake.refusal()
        if refusal is not None:
            log.warning("E-mail from %s (%s) refused for now: %s", camera, ip, refusal.value)
            return REPLIES[refusal]
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
        return tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY_BYTES, dir=str(self._cameras.root_dir))

    async def receive_mail(self, session: CameraSession, message: IO[bytes]) -> str:
        """The reply to a message received whole: its pictures queued, or why not."""
        camera, ip = session.camera, peer_ip(session)
        assert camera is not None  # known at MAIL FROM
        loop = asyncio.get_running_loop()
        try:
            ids = await loop.run_in_executor(self._queueing, self.queue_mail, camera, ip, message)
        except UnreadableMail as exc:  # sent again, it would fail again: refused for good
            log.warning("E-mail from %s (%s) refused: %s", camera, ip, exc)
            return UNREADABLE.format(exc)
        except NotAccepted as refused:  # logged by the intake; the camera sends it all again
            return REPLIES[refused.refusal]
        except Exception as exc:  # the loop serves every camera: it must survive this
            log.error(
                "Could not queue the e-mail from %s (%s): %s",
                camera,
                ip,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return REPLIES[Refusal.NOT_QUEUED]
        return f"250 2.0.0 Queued as {' '.join(map(str, ids))}"

    def queue_mail(self, camera: str, ip: str, message: IO[bytes]) -> list[int]:
        """Every picture of the message handed to the intake together, queued in one
        transaction; the queue ids, once committed. If any cannot be queued, none is and no
        copy is left (NotAccepted): the camera hears 4xx and sends the whole message again,
        each picture once, in one burst."""
        mail = read_mail(message)
        home = self._cameras.root_dir / camera
        ids = self._intake.accept(mail_uploads(mail, camera, home, ip, datetime.now().astimezone()))
        if mail.pictures:
            log.info("E-mail from %s (%s): %d picture(s) queued", camera, ip, len(ids))
        else:
            log.info("E-mail without a picture from %s (%s): a connection test", camera, ip)
        return ids


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
        intake: UploadIntake,
        *,
        login_throttle: LoginThrottle,
        tls_dir: Path | None = None,
    ) -> None:
        """`tls_dir`: where a self-signed certificate is made when tls has no certfile."""
        self._settings = settings
        self._cameras = cameras
        self._tls_dir = tls_dir
        self._handler = CameraMailHandler(cameras, intake, login_throttle)
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

        def listen(loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, asyncio.Server]:
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
