"""Builds the alert, error and test e-mails, and the notifier that sends them by SES or SMTP."""

from __future__ import annotations

import binascii
import html
import logging
import re
import secrets
import string
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from ipcam_analysis.notify.alert_body import alert_html, alert_text
from ipcam_analysis.notify.base import MailError, NotifierBase, NotifierContext
from ipcam_analysis.notify.mail_policy import MAIL_POLICY
from ipcam_analysis.notify.ses import SesTransport
from ipcam_analysis.notify.smtp import SmtpConfig, SmtpTransport
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Alert, NotifyOutcome

log = logging.getLogger(__name__)

IMAGE_CID = "image01"  # the original's Content-ID; users' templates may name it
ERROR_SUBJECT = "Image processing error"
DELIVERY_SUBJECT = "Alert not delivered by every channel"
TEST_SUBJECT = "Email test"


DEFAULT_SUBJECT = "⚡ $camera: detected $labels"


class EmailConfig(StrictModel):
    """`email:`; by SES unless it says otherwise, as the original. Left out (or empty), e-mail
    is off."""

    transport: Literal["ses", "smtp", "none"] = "ses"
    sender_email: str | None = None
    sender_name: str = "Ipcam Analysis"
    # None: the default page (camera, time, each object, the picture fitted to the screen,
    # notify/alert_body.py); a template with $camera, $date, $time, $list, $labels, $image.
    message_html: str | None = None
    subject: str = DEFAULT_SUBJECT
    recipients: list[str] = Field(default_factory=list)
    smtp: SmtpConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _off_when_left_out(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            return {"transport": "none"}
        return data

    @property
    def switched_on(self) -> bool:
        return self.transport != "none" and bool(self.recipients)

    @model_validator(mode="after")
    def _complete_for_transport(self) -> EmailConfig:
        if self.transport == "none":
            return self
        if not self.sender_email:
            raise ValueError(f"sender_email is required when transport is {self.transport}")
        if not self.recipients:
            raise ValueError(f"recipients is required when transport is {self.transport}")
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("an smtp section (host, port, ...) is required when transport is smtp")
        return self


# What a Message-ID's left part may not hold (RFC 5322's dot-atom, kept plain).
_UNSAFE_IN_MESSAGE_ID = re.compile(r"[^A-Za-z0-9_-]+")
# Characters that break a file name on some system or in some mail client.
_UNSAFE_IN_FILE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
# The random part of every boundary (120 bits; two hex digits more number the multiparts of a
# message), drawn once per process so that a multipart's Content-Type is parsed and folded once
# rather than for every e-mail (0.25 ms of the 1.9 an alert's e-mail took). Drawn at random, no
# template or camera name can hold it, and "=_" occurs in no quoted-printable or base64 text.
_BOUNDARY_TOKEN = secrets.token_hex(15)


class MailTransport(Protocol):
    """Hands a finished message to a mail service; raises MailError when it cannot."""

    name: str

    def send(self, message: EmailMessage, recipients: list[str]) -> None: ...


def render_template(template: str, tokens: dict[str, str]) -> str:
    """`$name` and `${name}` replaced, `$$` a dollar, unknown tokens left as written."""
    return string.Template(template).safe_substitute(tokens)


def build_alert_email(alert: Alert, settings: EmailConfig) -> EmailMessage:
    """The alert: HTML with the snapshot inline, a plain-text twin, and one copy of the picture.

    related → [alternative → [text, html], inline image]: clients that show the HTML find the
    picture by Content-ID; the others show or save the inline part by its file name. (The
    picture used to be attached a second time, byte for byte: 2.75 times its size per mail.)
    """
    file_name = snapshot_file_name(alert)
    body = MIMEPart(policy=MAIL_POLICY)
    body.set_content(alert_text(alert, file_name))
    body.add_alternative(_alert_html(alert, settings, file_name), subtype="html")
    # The email API will not turn an alternative into a related part, so it is built around it.
    subject = render_template(settings.subject, _subject_tokens(alert))
    message = _new_message(settings, subject, alert_message_id(alert))
    # Encoded in one C call: the email package's encoder loops in Python for every 57 bytes
    # (1 ms per copy at 800×488).
    inline = _jpeg_part(_base64_lines(alert.annotated_jpeg), "inline", filename=file_name)
    inline["Content-ID"] = f"<{IMAGE_CID}>"
    message.make_related()
    message.set_payload([body, inline])
    return _with_boundaries(message)


def snapshot_file_name(alert: Alert) -> str:
    """`cam01_2026-11-23_21-58-03.jpg`: what a mail client saves the picture as."""
    camera = _UNSAFE_IN_FILE_NAME.sub("_", alert.camera)
    return f"{camera}_{alert.received_at:%Y-%m-%d_%H-%M-%S}.jpg"


def _alert_html(alert: Alert, settings: EmailConfig, file_name: str) -> str:
    """The default page, or the user's own `message_html` rendered as the original did."""
    if settings.message_html is None:
        return alert_html(alert, file_name, IMAGE_CID)
    found = [(match.display_name, round(match.label.confidence)) for match in alert.matched]
    width, height = alert.image_size
    tokens = {
        **_time_tokens(alert),
        "camera": html.escape(alert.camera),
        "list": "<ul>"
        + "".join(f"<li><b>{html.escape(name)}</b>: {percent}%</li>" for name, percent in found)
        + "</ul>",
        "image": f'<img src="cid:{IMAGE_CID}" width="{width}" height="{height}" alt="snapshot"/>',
        "labels": html.escape(", ".join(name for name, _ in found)),
    }
    return f"<html><body>{render_template(settings.message_html, tokens)}</body></html>"


def _subject_tokens(alert: Alert) -> dict[str, str]:
    """The subject is plain text: the body's tokens without markup."""
    plain_list = ", ".join(match.display_name for match in alert.matched)
    return {
        **_time_tokens(alert),
        "camera": alert.camera,
        "list": plain_list,
        "image": "",
        "labels": plain_list,
    }


def _time_tokens(alert: Alert) -> dict[str, str]:
    when = alert.received_at
    return {"time": f"{when:%H:%M:%S}", "date": f"{when:%Y-%m-%d}"}


def _with_boundaries(message: EmailMessage) -> EmailMessage:
    """Each multipart gets a boundary that cannot occur in its parts: without one, flattening
    searches the whole message for the one it makes (14 % of a busy worker's time with the
    interpreter lock, py-spy --gil on bench/throughput.py)."""
    multiparts = (part for part in message.walk() if part.is_multipart())
    for index, part in enumerate(multiparts):
        part.set_boundary(f"=_{_BOUNDARY_TOKEN}{index:02x}")
    return message


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, as RFC 2045 wants."""
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "\n".join(text[at : at + 76] for at in range(0, len(text), 76)) + "\n"


def _jpeg_part(encoded: str, disposition: str, **params: str) -> MIMEPart:
    """A JPEG part from its base64 text; `params` (a filename) are encoded as RFC 2231 needs."""
    part = MIMEPart(policy=MAIL_POLICY)
    part["Content-Type"] = "image/jpeg"
    part["Content-Transfer-Encoding"] = "base64"
    part.add_header("Content-Disposition", disposition, **params)
    part.set_payload(encoded)
    return part


def build_error_email(
    camera: str, cause: str, settings: EmailConfig, hostname: str, delivery: str | None = None
) -> EmailMessage:
    """Tells people that images from a camera cannot be processed, and why; or, with `delivery`,
    that a picture was analysed and alerted on but some channel failed, and which."""
    if delivery is None:
        subject, headline = ERROR_SUBJECT, f"Failed to process an image from camera {camera}."
        status = f"Cause: {cause}"
    else:
        subject = DELIVERY_SUBJECT
        headline = f"An alert from camera {camera} did not reach every channel."
        status = f"What happened: {delivery}. The failed channels are tried again with backoff."
    message = _new_message(settings, subject)
    message.set_content(f"{headline}\n{status}\nServer: {hostname}\nCheck the logs for details.\n")
    headline, status, hostname = (html.escape(text) for text in (headline, status, hostname))
    message.add_alternative(
        f"<html><body><p>{headline}</p><p>{status}</p><p>Server: {hostname}</p>"
        "<p>Check the logs for details.</p></body></html>",
        subtype="html",
    )
    return _with_boundaries(message)


def build_test_email(settings: EmailConfig) -> EmailMessage:
    """A short message proving the sender, recipients and transport work."""
    return build_notice_email(
        TEST_SUBJECT, f"E-mail settings are ok (sent through {settings.transport}).", settings
    )


def build_notice_email(subject: str, text: str, settings: EmailConfig) -> EmailMessage:
    """A plain-text message from the service itself (tests, budget warnings)."""
    message = _new_message(settings, subject)
    message.set_content(text + "\n")
    return message


def alert_message_id(alert: Alert) -> str | None:
    """The left part of the alert's Message-ID, the same on every attempt for the same upload,
    so that a copy sent again after a crash is recognised as the same message; None for an
    alert that was not queued (no event id), which gets a random one."""
    if alert.event_id is None:
        return None
    camera = _UNSAFE_IN_MESSAGE_ID.sub("-", alert.camera)
    return f"ipcam-analysis.event-{alert.event_id}.{camera}.{alert.received_at:%Y%m%d%H%M%S}"


def _new_message(
    settings: EmailConfig, subject: str, message_id: str | None = None
) -> EmailMessage:
    """Headers; `message_id`, the left part of a stable Message-ID, or None for a random one."""
    if not settings.sender_email:
        raise ValueError("e-mail is not configured: sender_email is missing")
    domain = settings.sender_email.rpartition("@")[2] or None
    message = EmailMessage(policy=MAIL_POLICY)
    message["MIME-Version"] = "1.0"
    message["From"] = formataddr((settings.sender_name, settings.sender_email))
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = (
        f"<{message_id}@{domain or 'localhost'}>" if message_id else make_msgid(domain=domain)
    )
    # A line break in a template would otherwise end the header early.
    message["Subject"] = " ".join(subject.split())
    return message


class EmailNotifier(NotifierBase):
    """Sends alerts, error reports and test messages to the configured recipients."""

    name = "email"

    def __init__(self, settings: EmailConfig, transport: MailTransport) -> None:
        self._settings = settings
        self._transport = transport

    @classmethod
    def from_settings(cls, settings: EmailConfig, region: str | None) -> EmailNotifier | None:
        """None when e-mail is switched off (`transport: none`); `region` is SES's."""
        transport = build_transport(settings, region)
        return cls(settings, transport) if transport else None

    def send(self, alert: Alert) -> NotifyOutcome:
        return self._deliver(build_alert_email(alert, self._settings))

    def send_error(
        self, camera: str, cause: str, hostname: str, delivery: str | None = None
    ) -> NotifyOutcome:
        return self._deliver(build_error_email(camera, cause, self._settings, hostname, delivery))

    def send_test(self) -> NotifyOutcome:
        return self._deliver(build_test_email(self._settings))

    def send_notice(self, subject: str, text: str) -> NotifyOutcome:
        return self._deliver(build_notice_email(subject, text, self._settings))

    def _deliver(self, message: EmailMessage) -> NotifyOutcome:
        recipients = list(self._settings.recipients)
        subject = message["Subject"]
        try:
            self._transport.send(message, recipients)
        except MailError as exc:
            log.warning("E-mail %r %s not sent: %s", subject, message["Message-ID"], exc)
            return NotifyOutcome(self.name, ok=False, detail=str(exc), retry=exc.transient)
        log.info(
            "E-mail %r %s sent to %s through %s",
            subject,
            message["Message-ID"],
            recipients,
            self._transport.name,
        )
        return NotifyOutcome(
            self.name, ok=True, detail=f"sent to {len(recipients)} through {self._transport.name}"
        )


def _ses_transport(settings: EmailConfig, region: str | None) -> MailTransport:
    return SesTransport(region)


def _smtp_transport(settings: EmailConfig, region: str | None) -> MailTransport:
    if settings.smtp is None:
        raise ValueError("transport smtp needs an smtp section")
    return SmtpTransport(settings.smtp)


TRANSPORTS: dict[str, Callable[[EmailConfig, str | None], MailTransport] | None] = {
    "ses": _ses_transport,
    "smtp": _smtp_transport,
    "none": None,
}


def build_transport(settings: EmailConfig, region: str | None) -> MailTransport | None:
    """The transport `settings.transport` names (SES in `region`), or None when e-mail is
    switched off."""
    factory = TRANSPORTS[settings.transport]
    return factory(settings, region) if factory else None


def build_email_notifiers(settings: EmailConfig, context: NotifierContext) -> list[EmailNotifier]:
    """The e-mail notifier, when e-mail is on."""
    notifier = EmailNotifier.from_settings(settings, context.region)
    return [notifier] if notifier else []
