"""Sends finished e-mails through Amazon SES: SESv2 `SendEmail` with the raw message, or SES v1's
`SendRawEmail` (the original's call) where the user's IAM policy allows only that."""

from __future__ import annotations

import functools
import io
import logging
import re
import threading
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ipcam_analysis import aws
from ipcam_analysis.notify.base import MailError
from ipcam_analysis.notify.mail_policy import MAIL_POLICY

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

log = logging.getLogger(__name__)

HTTP_FORBIDDEN = 403
LINE_ENDS = re.compile(r"\r\n|\r|\n")  # what the standard generator turns into its own


class SesTransport:
    name = "ses"

    def __init__(self, region: str | None) -> None:
        # boto3 clients are thread-safe: one serves every worker. SESv2's JSON API costs a
        # fifth of the CPU of v1's form-encoded one for the same message (docs/performance.md).
        self._region = region
        self._v2 = aws.client("sesv2", region)
        self._v1: SESClient | None = None  # made on the first refusal of SESv2, then used for good
        self._lock = threading.Lock()

    def send(self, message: EmailMessage, recipients: list[str]) -> None:
        data = wire_bytes(message)
        sender = envelope_sender(message)
        try:
            v1 = self._v1
            if v1 is None:
                try:
                    self._v2.send_email(
                        FromEmailAddress=sender,
                        Destination={"ToAddresses": recipients},
                        Content={"Raw": {"Data": data}},
                    )
                    return
                except ClientError as exc:
                    if not _access_denied(exc):
                        raise
                    v1 = self._fall_back_to_v1()
            v1.send_raw_email(Source=sender, Destinations=recipients, RawMessage={"Data": data})
        except (BotoCoreError, ClientError) as exc:
            cause, transient = aws.describe_aws_error(exc)
            raise MailError(f"SES: {cause}", transient=transient) from exc

    def _fall_back_to_v1(self) -> SESClient:
        with self._lock:
            if self._v1 is None:
                log.warning(
                    "SES: the AWS credentials may not use SESv2's ses:SendEmail; sending with"
                    " SES v1's ses:SendRawEmail instead (allow ses:SendEmail: it costs less CPU)"
                )
                self._v1 = aws.client("ses", self._region)
            return self._v1


def _access_denied(exc: ClientError) -> bool:
    """IAM refused the action (not the message, not the credentials): AWS says
    AccessDeniedException; an XML error body that botocore's JSON parser cannot read leaves
    only the status as the code (moto does this)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code.startswith("AccessDenied") or code == str(HTTP_FORBIDDEN)


def envelope_sender(message: EmailMessage) -> str:
    """The From header as SES's `Source` wants it: ASCII, a non-ASCII name as an RFC 2047 word."""
    return _encoded_address(str(message["From"]))


@functools.lru_cache(maxsize=16)  # one sender per notifier: parsed once, not per e-mail
def _encoded_address(header: str) -> str:
    # The header object holds the decoded name; formataddr encodes it again.
    return formataddr(parseaddr(header))


class _WholeBodyGenerator(BytesGenerator):
    """The standard generator, but each body written in one piece: it writes a 100 KB picture
    line by line in Python (a fifth of the time to flatten an alert, docs/performance.md)."""

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            self.write(LINE_ENDS.sub(MAIL_POLICY.linesep, lines))
        elif lines:  # the usual case, in a tenth of the expression's time
            self.write(lines.replace("\n", MAIL_POLICY.linesep))


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as `as_bytes(policy=policy.SMTP)` gives it: CRLF line ends, as RFC 5322
    wants on the wire. (Our policy is SMTP's, with headers parsed once: the generator reads
    each part's Content-Type several times.)"""
    buffer = io.BytesIO()
    _WholeBodyGenerator(buffer, mangle_from_=False, policy=MAIL_POLICY).flatten(message)
    return buffer.getvalue()
