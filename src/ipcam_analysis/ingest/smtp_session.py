"""One camera's SMTP session: its share of the connections, slow answers to failed logins, and a
message spooled (memory, then a file) where aiosmtpd would hold it line by line in memory."""

from __future__ import annotations

import asyncio
import logging
from typing import IO, TYPE_CHECKING

from aiosmtpd.smtp import SMTP, AuthResult, Session, TLSSetupException

from ipcam_analysis.ingest.handoff import Refusal
from ipcam_analysis.ingest.tls import tls_failure

if TYPE_CHECKING:
    from ipcam_analysis.ingest.smtp import CameraMailHandler

log = logging.getLogger("ipcam_analysis.ingest.smtp")  # one log for the server and its sessions

# The intake's refusals in SMTP's words (RFC 5321, RFC 3463): a 4xx has the camera send again.
REPLIES = {
    Refusal.QUEUE_FULL: "452 4.3.1 Too many uploads waiting for analysis; try again later.",
    Refusal.DISK_FULL: "452 4.3.1 Insufficient storage space on the server; try again later.",
    Refusal.NOT_STORED: "451 4.3.0 The message could not be stored; try again later",
    Refusal.NOT_QUEUED: "451 4.3.0 The pictures could not be queued; try again later",
}
TOO_MANY_SESSIONS = b"421 4.3.2 The server is busy (too many connections); try again later\r\n"
TOO_MUCH_DATA = "552 Error: Too much mail data"  # aiosmtpd's words, as push() expects them
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


class CameraSession(Session):
    """aiosmtpd's session, with the camera it is for and the name of a login being refused."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.camera: str | None = None  # known at MAIL FROM
        self.failed_login: str | None = None  # answered after the throttle's delay


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

    def _create_session(self) -> CameraSession:
        return CameraSession(self.loop)

    def camera_session(self) -> CameraSession:
        # A method, not a property: aiosmtpd's __init__ reads every attribute, before any session.
        assert isinstance(self.session, CameraSession)  # made by _create_session
        return self.session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starting = self.transport is None  # not the switch to TLS within a session
        super().connection_made(transport)
        if not starting:
            return
        assert self._handler_coroutine is not None
        self.event_handler.open_sessions.add(self)
        ip = peer_ip(self.camera_session())
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
        session = self.camera_session()
        if self._counted:
            self._counted = False
            self.event_handler.sessions.release(peer_ip(session), self)
            if self.envelope is not None and self.envelope.mail_from:
                log.warning(
                    "E-mail from %s (%s) cut off before its end: nothing queued",
                    session.camera,
                    peer_ip(session),
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
        if text.startswith("552") and isinstance(session, CameraSession):
            # At MAIL FROM (a SIZE announced) the camera is known only by its login so far.
            camera = session.camera or (session.auth_data if session.authenticated else None)
            log.warning(
                "E-mail from %s (%s) refused: larger than smtp_server.max_message_mb",
                camera or "an unknown sender",
                peer_ip(session),
            )
        await super().push(text)

    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the message spooled (see SPOOL_IN_MEMORY_BYTES) where aiosmtpd
        keeps every line of it in memory until the end."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
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
                reply = await self.event_handler.receive_mail(self.camera_session(), message)
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
            log.error(
                "Could not store the e-mail from %s (%s): %s",
                self.camera_session().camera,
                peer_ip(self.camera_session()),
                exc,
            )
            return REPLIES[Refusal.NOT_STORED]
        return None

    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._slow_if_failed(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        return await self._slow_if_failed(await super().auth_LOGIN(_, args))

    async def _slow_if_failed(self, result: AuthResult) -> AuthResult:
        """The same escalating delay per address as FTP logins, before the 535."""
        session = self.camera_session()
        ip, throttle = peer_ip(session), self.event_handler.login_throttle
        if result.success:
            throttle.forget(ip)
            return result
        camera, session.failed_login = session.failed_login, None
        if camera is None:  # a malformed exchange, already answered
            return result
        await asyncio.sleep(throttle.failed_login(ip, camera, "SMTP", log))
        return result
