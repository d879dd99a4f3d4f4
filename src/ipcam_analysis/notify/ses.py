"""Sends finished e-mails through Amazon SES (`SendRawEmail`), as the original did."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

from botocore.exceptions import BotoCoreError, ClientError

from ipcam_analysis import aws
from ipcam_analysis.notify.base import MailError


class SesTransport:
    name = "ses"

    def __init__(self, region: str | None) -> None:
        # boto3 clients are thread-safe: one serves every worker.
        self._client = aws.client("ses", region)

    def send(self, message: EmailMessage, recipients: list[str]) -> None:
        try:
            self._client.send_raw_email(
                Source=envelope_sender(message),
                Destinations=recipients,
                # RFC 5322 wants CRLF line ends on the wire.
                RawMessage={"Data": message.as_bytes(policy=policy.SMTP)},
            )
        except (BotoCoreError, ClientError) as exc:
            cause, transient = aws.describe_aws_error(exc)
            raise MailError(f"SES: {cause}", transient=transient) from exc


def envelope_sender(message: EmailMessage) -> str:
    """The From header as SES's `Source` wants it: ASCII, a non-ASCII name as an RFC 2047 word."""
    # The header object holds the decoded name; formataddr encodes it again.
    return formataddr(parseaddr(str(message["From"])))
