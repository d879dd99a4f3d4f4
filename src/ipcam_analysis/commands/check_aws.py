"""`--test-aws`: check credentials, Rekognition and the mail transport, as the original did, safely."""

from __future__ import annotations

import io
import os

from PIL import Image

from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import DetectorError
from ipcam_analysis.detect.rekognition import RekognitionDetector
from ipcam_analysis.imaging import decode_snapshot
from ipcam_analysis.masking import mask_secret
from ipcam_analysis.notify import EmailConfig, EmailNotifier

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)
SECRET_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def run(config: AppConfig) -> int:
    """Print what is checked and how it went; 0 only when every check passed."""
    print("Testing Amazon AWS")
    print("AWS environment variables")
    for name in AWS_VARIABLES:
        value = os.environ.get(name)
        shown = mask_secret(value, show_last=4) if name in SECRET_VARIABLES else value
        print(f"  {name}={shown if value else '<not set>'}")
    ok = _test_rekognition(config) & _test_email(config)
    print("Test OK" if ok else "Test FAILED")
    return 0 if ok else 1


def _test_rekognition(config: AppConfig) -> bool:
    print("Checking AWS Rekognition permissions")
    print(f"  AWS Region: {config.aws_region or '<from the AWS environment>'}")
    buffer = io.BytesIO()
    Image.new("RGB", (80, 80), "white").save(buffer, "JPEG")
    try:
        # A low threshold: a white square is labelled with something only below the usual 75 %.
        settings = config.rekognition_settings().model_copy(
            update={"min_confidence_percent": 55, "image_resize_percent": 100}
        )
        detector = RekognitionDetector(settings, config.aws_region)
        detection = detector.detect(decode_snapshot(buffer.getvalue()))
    except (DetectorError, ValueError) as exc:
        print(f"  REKOGNITION ERROR: {exc}")
        return False
    print("  Response OK")
    print("  Objects detected" if detection.labels else "  WARNING: No object detected")
    return True


def _test_email(config: AppConfig) -> bool:
    settings = config.section(EmailConfig)
    if settings.transport == "none":
        print("E-mail is turned off (email.transport: none): not tested")
        return True
    print(f"Testing email {settings.transport.upper()} settings")
    print(f"  Email sender: {settings.sender_email}")
    print(f"  Email recipients: {', '.join(settings.recipients)}")
    if settings.transport == "ses":
        print(f"  AWS Region: {config.aws_region or '<from the AWS environment>'}")
    elif settings.smtp:
        print(
            f"  SMTP server: {settings.smtp.host}:{settings.smtp.effective_port} ({settings.smtp.security})"
        )
    notifier = EmailNotifier.from_settings(settings, config.aws_region)
    outcome = notifier.send_test() if notifier else None
    if outcome is None or not outcome.ok:
        print(f"  EMAIL ERROR: {outcome.detail if outcome else 'no transport'}")
        return False
    print("  Email successfully sent.")
    return True
