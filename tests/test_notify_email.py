"""Alert, error and test e-mails sent through SES (moto) and SMTP (aiosmtpd), read as users do."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage, MIMEPart

import pytest
from PIL import Image

from harness.aws import REGION, Moto
from harness.smtp import (
    HOST,
    REFUSED_FOR_NOW,
    REFUSED_PERMANENTLY,
    SmtpSink,
    free_port,
)
from ipcam_analysis.imaging import draw_boxes, encode_jpeg
from ipcam_analysis.notify.base import MailError
from ipcam_analysis.notify.email import (
    EmailConfig,
    EmailNotifier,
    build_alert_email,
    build_transport,
    render_template,
)
from ipcam_analysis.notify.ses import SesTransport, envelope_sender
from ipcam_analysis.notify.smtp import SmtpConfig, SmtpTransport
from ipcam_analysis.values import Alert, MatchedLabel
from tests.test_annotate import (
    DOG_BOX,
    HORSE_BOX,
    PERSON_BOX,
    PERSON_PHOTO,
    matched,
    yellow_share_on_edges,
)

SENDER = "sender@example.com"
SENDER_NAME = "Caméra Überwachung ⚡"
RECIPIENTS = ["alice@example.com", "bob@example.org"]
SUBJECT = "⚡ $camera: $list$image at $time"
BODY = "<p>Seen:</p>$list<p>$image</p><p>$labels on $date at $time, $unknown, $$5</p>"
RECEIVED_AT = datetime(2026, 11, 23, 21, 58, 3, 950010, tzinfo=timezone(timedelta(hours=1)))
RESIZE_PERCENT = 50


def make_alert(camera: str = "front-gate", labels: tuple[MatchedLabel, ...] = ()) -> Alert:
    labels = labels or (matched("Person", PERSON_BOX, 98.7), matched("Horse", HORSE_BOX, 87.6))
    annotated = draw_boxes(Image.open(PERSON_PHOTO), labels, RESIZE_PERCENT)
    return Alert(camera, RECEIVED_AT, labels, encode_jpeg(annotated), annotated.size, "snap.jpg")


def email_settings(transport: str, **changes: object) -> EmailConfig:
    fields = {
        "transport": transport,
        "sender_email": SENDER,
        "sender_name": SENDER_NAME,
        "recipients": RECIPIENTS,
        "subject": SUBJECT,
        "message_html": BODY,
        **changes,
    }
    return EmailConfig.model_validate(fields)


def smtp_config(port: int, **changes: object) -> SmtpConfig:
    return SmtpConfig.model_validate({"host": HOST, "port": port, "security": "none", **changes})


def smtp_settings(port: int, **changes: object) -> EmailConfig:
    return email_settings("smtp", smtp=smtp_config(port, **changes))


@dataclass
class Mailbox:
    """A notifier wired to a real mail service, and a way to read what that service accepted."""

    transport: str
    notifier: EmailNotifier
    read: Callable[[], list[EmailMessage]]

    def only_message(self) -> EmailMessage:
        messages = self.read()
        assert len(messages) == 1
        return messages[0]


@pytest.fixture(params=["ses", "smtp"])
def mailbox(request: pytest.FixtureRequest) -> Iterator[Mailbox]:
    if request.param == "ses":
        aws: Moto = request.getfixturevalue("aws")
        settings, read = email_settings("ses"), aws.sent_emails
    else:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        settings, read = smtp_settings(sink.port), lambda: sink.messages
    transport = build_transport(settings, REGION)
    assert transport is not None and transport.name == request.param
    yield Mailbox(request.param, EmailNotifier(settings, transport), read)


@pytest.fixture
def alert_email(mailbox: Mailbox) -> EmailMessage:
    outcome = mailbox.notifier.send(make_alert())
    assert outcome.ok and outcome.notifier == "email", outcome.detail
    return mailbox.only_message()


def parts(message: MIMEPart, depth: int = 0) -> list[tuple[int, str]]:
    """Every part's depth and content type, in order."""
    found = [(depth, message.get_content_type())]
    for child in message.iter_parts():
        found += parts(child, depth + 1)
    return found


def html_of(message: MIMEPart) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return body.get_content()


def text_of(message: MIMEPart) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def picture_of(message: MIMEPart) -> MIMEPart:
    """The message's only image part (a mail client lists it as the one file to save)."""
    (picture,) = [part for part in message.walk() if part.get_content_maintype() == "image"]
    assert list(message.iter_attachments()) == [picture]
    return picture


def test_headers_show_sender_name_recipients_and_a_plain_subject(alert_email: EmailMessage) -> None:
    (sender,) = alert_email["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (SENDER_NAME, SENDER)
    assert [a.addr_spec for a in alert_email["To"].addresses] == RECIPIENTS
    assert alert_email["Date"].datetime is not None
    assert alert_email["Message-ID"].endswith("@example.com>")
    # $list and $image expand in the subject too, but without any markup.
    assert alert_email["Subject"] == "⚡ front-gate: Person, Horse at 21:58:03"


def test_mime_structure_is_related_html_with_text_twin_and_one_picture(
    alert_email: EmailMessage,
) -> None:
    assert parts(alert_email) == [
        (0, "multipart/related"),
        (1, "multipart/alternative"),
        (2, "text/plain"),
        (2, "text/html"),
        (1, "image/jpeg"),
    ]
    inline = list(alert_email.iter_parts())[1]
    assert inline["Content-ID"] == "<image01>"
    assert inline.get_content_disposition() == "inline"
    # One copy, with the name a mail client saves it under.
    assert inline.get_filename() == "front-gate_2026-11-23_21-58-03.jpg"


def test_html_body_has_the_list_the_inline_image_and_every_token(
    alert_email: EmailMessage,
) -> None:
    html = html_of(alert_email)
    assert html.startswith("<html><body><p>Seen:</p>") and html.rstrip().endswith("</body></html>")
    assert "<ul><li><b>Person</b>: 99%</li><li><b>Horse</b>: 88%</li></ul>" in html
    assert '<img src="cid:image01" width="320" height="212" alt="snapshot"/>' in html
    assert "<p>Person, Horse on 2026-11-23 at 21:58:03, $unknown, $5</p>" in html


def test_text_part_reads_without_html(alert_email: EmailMessage) -> None:
    text = text_of(alert_email)
    assert "front-gate" in text and "2026-11-23 at 21:58:03" in text
    assert "- Person: 99%" in text and "- Horse: 88%" in text
    assert "<" not in text


def test_the_picture_is_the_annotated_snapshot(alert_email: EmailMessage) -> None:
    attachment = picture_of(alert_email)
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_filename() == "front-gate_2026-11-23_21-58-03.jpg"

    image = Image.open(io.BytesIO(attachment.get_content()))
    assert image.format == "JPEG"
    assert image.size == (640 * RESIZE_PERCENT // 100, 424 * RESIZE_PERCENT // 100)
    assert yellow_share_on_edges(image, PERSON_BOX) > 0.9
    assert yellow_share_on_edges(image, HORSE_BOX) > 0.9
    assert yellow_share_on_edges(image, DOG_BOX) < 0.05  # detected, but not matched


def test_names_are_escaped_in_html_and_plain_in_subject_and_file_name(mailbox: Mailbox) -> None:
    alert = make_alert("<b>x</b>", (matched("Car & <Truck>", PERSON_BOX, 91.2),))
    assert mailbox.notifier.send(alert).ok
    message = mailbox.only_message()

    html = html_of(message)
    assert "<b>x</b>" not in html
    assert "<li><b>Car &amp; &lt;Truck&gt;</b>: 91%</li>" in html
    assert "Car &amp; &lt;Truck&gt; on" in html  # $labels
    assert message["Subject"] == "⚡ <b>x</b>: Car & <Truck> at 21:58:03"
    assert picture_of(message).get_filename() == "_b_x__b__2026-11-23_21-58-03.jpg"


def test_subject_template_with_html_tokens_and_line_breaks_stays_one_plain_line() -> None:
    settings = email_settings("ses", subject="$camera\r\n$image$list\n(${labels})")
    message = build_alert_email(make_alert(), settings)
    assert message["Subject"] == "front-gate Person, Horse (Person, Horse)"


def test_error_email_names_camera_cause_and_server(mailbox: Mailbox) -> None:
    cause = "InvalidImageFormatException: Request has <invalid> image format"
    outcome = mailbox.notifier.send_error("<cam02>", cause, "ipcam-server")
    assert outcome.ok, outcome.detail

    message = mailbox.only_message()
    assert message["Subject"] == "Image processing error"
    assert message["From"].addresses[0].display_name == SENDER_NAME
    text = text_of(message)
    assert "<cam02>" in text and cause in text and "ipcam-server" in text
    html = html_of(message)
    assert "&lt;cam02&gt;" in html and "Request has &lt;invalid&gt; image format" in html
    assert "ipcam-server" in html


def test_test_email_names_the_transport(mailbox: Mailbox) -> None:
    outcome = mailbox.notifier.send_test()
    assert outcome.ok, outcome.detail
    message = mailbox.only_message()
    assert message["Subject"] == "Email test"
    assert f"E-mail settings are ok (sent through {mailbox.transport})" in message.get_content()


def test_render_template_is_compatible_with_the_original() -> None:
    tokens = {"camera": "cam01", "list": "<ul></ul>"}
    assert render_template("$camera ${camera}s $$1 $other ${list}", tokens) == (
        "cam01 cam01s $1 $other <ul></ul>"
    )
    assert render_template("100% $", tokens) == "100% $"


def test_build_transport_follows_the_setting() -> None:
    assert build_transport(email_settings("none", sender_email=None), REGION) is None
    assert isinstance(build_transport(email_settings("ses"), REGION), SesTransport)
    assert isinstance(build_transport(smtp_settings(2525), REGION), SmtpTransport)


def test_ses_source_is_ascii_with_the_encoded_display_name() -> None:
    source = envelope_sender(build_alert_email(make_alert(), email_settings("ses")))
    assert source.isascii() and source.startswith("=?utf-8?") and source.endswith(f"<{SENDER}>")


def test_ses_unverified_sender_is_a_permanent_failure(aws: Moto) -> None:
    settings = email_settings("ses", sender_email="stranger@unverified.example")
    outcome = EmailNotifier(settings, SesTransport(REGION)).send(make_alert())
    assert not outcome.ok and not outcome.retry
    assert "MessageRejected" in outcome.detail
    assert aws.sent_emails() == []


def test_ses_unreachable_is_transient(aws: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{HOST}:{free_port()}")
    with pytest.raises(MailError) as failure:
        SesTransport(REGION).send(
            build_alert_email(make_alert(), email_settings("ses")), RECIPIENTS
        )
    assert failure.value.transient
    assert str(failure.value).startswith("SES: cannot reach AWS")


def test_smtp_login(smtp_login_sink: SmtpSink) -> None:
    login = {"username": smtp_login_sink.username, "password": smtp_login_sink.password}
    config = smtp_config(smtp_login_sink.port, **login)
    assert EmailNotifier(email_settings("smtp", smtp=config), SmtpTransport(config)).send_test().ok
    (mail,) = smtp_login_sink.received
    assert mail.login == smtp_login_sink.username
    assert mail.recipients == RECIPIENTS and mail.mail_from == SENDER


def smtp_failure(port: int, recipients: list[str] | None = None, **changes: object) -> MailError:
    message = build_alert_email(make_alert(), email_settings("ses"))
    with pytest.raises(MailError) as failure:
        SmtpTransport(smtp_config(port, **changes)).send(message, recipients or RECIPIENTS)
    return failure.value


def test_smtp_wrong_password_is_permanent_and_not_repeated(smtp_login_sink: SmtpSink) -> None:
    password = "Wrong-Secret-Pass-99"
    error = smtp_failure(smtp_login_sink.port, username="camera-mailer", password=password)
    assert not error.transient
    assert "rejected the login of 'camera-mailer'" in str(error) and "535" in str(error)
    assert password not in str(error)
    assert smtp_login_sink.received == []


def test_smtp_nothing_listening_is_transient() -> None:
    error = smtp_failure(free_port())
    assert error.transient
    assert "cannot connect" in str(error)


def test_smtp_server_that_never_answers_is_transient() -> None:
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever says hello
        error = smtp_failure(silent.getsockname()[1], timeout_seconds=0.5)
    assert error.transient
    assert "no answer within 0.5 s" in str(error)


def test_smtp_without_starttls_support_is_permanent(smtp_sink: SmtpSink) -> None:
    error = smtp_failure(smtp_sink.port, security="starttls")
    assert not error.transient
    assert "STARTTLS" in str(error)


def test_smtp_tls_to_a_plain_text_server_is_permanent(smtp_sink: SmtpSink) -> None:
    error = smtp_failure(smtp_sink.port, security="tls")
    assert not error.transient
    assert "TLS failed" in str(error)


@pytest.mark.parametrize(
    ("recipient", "transient", "reply"),
    [(REFUSED_PERMANENTLY, False, "550"), (REFUSED_FOR_NOW, True, "451")],
)
def test_smtp_refused_recipient(
    smtp_sink: SmtpSink, recipient: str, transient: bool, reply: str
) -> None:
    error = smtp_failure(smtp_sink.port, [recipient])
    assert error.transient is transient
    assert recipient in str(error) and reply in str(error)
    assert smtp_sink.received == []


def test_smtp_partly_refused_is_reported_but_not_retried(smtp_sink: SmtpSink) -> None:
    config = smtp_config(smtp_sink.port)
    settings = email_settings("smtp", smtp=config, recipients=[*RECIPIENTS, REFUSED_FOR_NOW])
    outcome = EmailNotifier(settings, SmtpTransport(config)).send(make_alert())
    # The others already have it: a retry would send them a second copy.
    assert not outcome.ok and not outcome.retry
    assert f"delivered, except to {REFUSED_FOR_NOW}" in outcome.detail
    (mail,) = smtp_sink.received
    assert mail.recipients == RECIPIENTS
