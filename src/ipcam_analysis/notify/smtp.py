"""Sends finished e-mails through an SMTP server: plain, STARTTLS or TLS, with an optional login."""

from __future__ import annotations

import functools
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ipcam_analysis.masking import MASK
from ipcam_analysis.notify.base import MailError
from ipcam_analysis.settings import StrictModel


class SmtpConfig(StrictModel):
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"
    timeout_seconds: float = Field(30, gt=0)
    # The certificate (PEM) of a private CA that signed the server's certificate (a NAS, a
    # home mail server); only it is then trusted. None: the system's CAs (and SSL_CERT_FILE).
    cafile: Path | None = None

    @field_validator("cafile")
    @classmethod
    def _pem_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path to the CA's certificate (a PEM file)")
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @model_validator(mode="after")
    def _password_with_username(self) -> SmtpConfig:
        if self.username and not (self.password and self.password.get_secret_value()):
            raise ValueError(
                "username is set without password: set both, or neither for a server that "
                "takes mail without a login"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


class SmtpTransport:
    name = "smtp"

    def __init__(self, settings: SmtpConfig) -> None:
        self._settings = settings

    def send(self, message: EmailMessage, recipients: list[str]) -> None:
        try:
            refused = self._deliver(message, recipients)
        except OSError as exc:  # smtplib's and ssl's errors are OSErrors too
            cause, transient = describe_smtp_error(exc, self._settings)
            raise MailError(self._explain(cause), transient=transient) from exc
        if refused:
            # Retrying would send the others a second copy, so this is reported, not retried.
            cause = f"delivered, except to {_describe_refusals(refused)}"
            raise MailError(self._explain(cause), transient=False)

    def _deliver(
        self, message: EmailMessage, recipients: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        settings = self._settings
        context = None if settings.security == "none" else _tls_context(settings.cafile)
        address = (settings.host, settings.effective_port)
        connection = (
            smtplib.SMTP_SSL(*address, timeout=settings.timeout_seconds, context=context)
            if settings.security == "tls"
            else smtplib.SMTP(*address, timeout=settings.timeout_seconds)
        )
        try:
            if settings.security == "starttls":
                connection.starttls(context=context)
            if settings.username:
                connection.login(settings.username, self._password)
            return connection.send_message(message, to_addrs=recipients)
        finally:
            _quit_quietly(connection)

    @property
    def _password(self) -> str:
        password = self._settings.password
        return password.get_secret_value() if password else ""

    def _explain(self, cause: str) -> str:
        settings = self._settings
        text = f"SMTP server {settings.host}:{settings.effective_port}: {cause}"
        # A server may quote what it was sent; the password must not reach logs or the dashboard.
        return text.replace(self._password, MASK) if self._password else text


def _quit_quietly(connection: smtplib.SMTP) -> None:
    """Once the server has answered 250 to the data, the mail is its: a QUIT that fails or is
    not answered must not turn that into a failure, which would send it again."""
    try:
        connection.quit()
    except OSError:  # smtplib's errors are OSErrors too
        connection.close()


@functools.cache
def _tls_context(cafile: Path | None) -> ssl.SSLContext:
    """One per CA file for the process, made at the first TLS connection: loading the system's
    CA bundle takes 25–40 ms, and contexts are safe to share between threads."""
    return ssl.create_default_context(cafile=cafile)


def describe_smtp_error(exc: OSError, settings: SmtpConfig) -> tuple[str, bool]:
    """A one-line cause for the user, and whether retrying later may succeed (4xx, network)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return f"refused {_describe_refusals(exc.recipients)}", all(_is_temporary(c) for c in codes)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        login = f"rejected the login of {settings.username!r}"
        return f"{login} ({_reply(exc.smtp_code, exc.smtp_error)})", _is_temporary(exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"answered {_reply(exc.smtp_code, exc.smtp_error)}", _is_temporary(exc.smtp_code)
    # smtplib reports a read timeout as a disconnection; the timeout is the useful part.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within {settings.timeout_seconds:g} s", True
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"closed the connection ({exc})", True
    if isinstance(exc, smtplib.SMTPException):
        # Missing STARTTLS or AUTH support, no usable login method: the settings must change.
        return str(exc), False
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc}); check the security setting and the port", False
    return f"cannot connect ({exc})", True


def _describe_refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} ({_reply(*reply)})" for address, reply in refused.items())


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # Multi-line replies arrive joined by newlines; the cause must stay one line.
    return " ".join(f"{code} {text}".split())


def _is_temporary(code: int) -> bool:
    return 400 <= code < 500
