"""A real SMTP server (aiosmtpd) on a loopback port that keeps every message it accepts."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
USERNAME = "camera-mailer"
PASSWORD = "Sink-Passw0rd-7431"

# Recipients the sink refuses, so a test can meet a real refusal of either kind.
REFUSED_PERMANENTLY = "nobody@refused.example"
REFUSED_FOR_NOW = "busy@refused.example"
_REFUSALS = {
    REFUSED_PERMANENTLY: "550 5.1.1 Mailbox unavailable",
    REFUSED_FOR_NOW: "451 4.3.0 Mailbox busy, try again later",
}


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the envelope as the client gave it, and the parsed message."""

    mail_from: str
    recipients: list[str]
    message: EmailMessage
    login: str | None  # the user the client logged in as, if it did
    tls: bool  # whether it came over TLS (STARTTLS or implicit)


@dataclass
class SmtpSink:
    """Where the server listens, the login it accepts (when it asks for one), and what it got."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    received: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A slow server: the reply to this command ("RCPT": before the message is handed over;
    # "DATA": the message is kept, its 250 not yet sent) waits until `release` is set.
    hold_reply_to: str | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: int = 0  # replies held so far (each a client waiting, until release)
    quits: int = 0  # QUITs answered: the client is done with the session
    quit_reply: str = "221 Bye"
    max_data_reply_seconds: float = (
        0.0  # a busy server: each 250 to a message comes after up to this
    )

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [mail.message for mail in self.received]

    def hold(self, command: str) -> None:
        """Hold the next replies to `command` until release() (a server slow to answer)."""
        self.release.clear()
        self.holding.clear()
        self.hold_reply_to = command

    def stop_holding(self) -> None:
        self.hold_reply_to = None
        self.release.set()

    async def reply_when_released(self, command: str) -> None:
        if self.hold_reply_to != command:
            return
        self.held += 1
        self.holding.set()
        while not self.release.is_set():  # a delay inside the fake server, not a test's wait
            await asyncio.sleep(0.02)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in _REFUSALS:
            return _REFUSALS[address]
        await self._sink.reply_when_released("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            recipients=list(envelope.rcpt_tos),
            message=message_from_bytes(raw, policy=policy.default),
            login=session.auth_data if session.authenticated else None,
            tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
        )
        with self._sink.lock:
            self._sink.received.append(mail)
        await asyncio.sleep(random.uniform(0, self._sink.max_data_reply_seconds))
        await self._sink.reply_when_released("DATA")
        return "250 Message accepted"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._sink.lock:
            self._sink.quits += 1
        return self._sink.quit_reply


def _authenticator(sink: SmtpSink) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        accepted = isinstance(data, LoginPassword) and data == LoginPassword(
            str(sink.username).encode(), str(sink.password).encode()
        )
        # handled=False: the server itself answers 535 to a wrong login.
        return AuthResult(
            success=accepted, handled=False, auth_data=sink.username if accepted else None
        )

    return authenticate


def free_port() -> int:
    """A loopback port nothing listens on right now (Controller needs a number, not 0)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_sink(
    *,
    with_login: bool,
    port: int | None = None,
    tls: ssl.SSLContext | None = None,
    security: str = "starttls",
) -> Iterator[SmtpSink]:
    """An SMTP server for the duration of the block; `with_login` makes it offer AUTH; with a
    `tls` server context it requires STARTTLS (security "starttls") or speaks TLS at once ("tls")."""
    sink = SmtpSink(HOST, port or free_port())
    options: dict[str, Any] = {}
    if with_login:
        sink.username, sink.password = USERNAME, PASSWORD
        # Plain-text AUTH is fine on loopback; the transport's TLS modes are not what is tested.
        options = {"authenticator": _authenticator(sink), "auth_require_tls": False}
    if tls is not None and security == "tls":
        options["ssl_context"] = tls
    elif tls is not None:
        options.update(tls_context=tls, require_starttls=True)
    controller = Controller(
        _Handler(sink), hostname=HOST, port=sink.port, ready_timeout=30, **options
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server without login that keeps what it accepts in `smtp_sink.received`."""
    with running_sink(with_login=False) as sink:
        yield sink


@pytest.fixture
def smtp_login_sink() -> Iterator[SmtpSink]:
    """The same, offering AUTH for `smtp_login_sink.username` / `.password` only."""
    with running_sink(with_login=True) as sink:
        yield sink
