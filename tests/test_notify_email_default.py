"""The default alert e-mail as a client reads it (camera, time, each object, one picture), its
SpamAssassin score, and the original program's template still rendered as before."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from email.message import EmailMessage

import pytest
from PIL import Image

from harness.service import DATA
from ipcam_analysis.imaging import draw_boxes, encode_jpeg
from ipcam_analysis.notify.email import build_alert_email
from ipcam_analysis.values import Alert, MatchedLabel
from tests.test_annotate import detected
from tests.test_notify_email import (
    RECEIVED_AT,
    email_settings,
    html_of,
    make_alert,
    smtp_config,
    text_of,
)

ORIGINAL_MESSAGE_HTML = "<p>List of objects:</p>$list<p>$image</p>"  # the seed config's


def test_the_original_programs_template_renders_as_before() -> None:
    settings = email_settings("ses", message_html=ORIGINAL_MESSAGE_HTML)
    html = html_of(build_alert_email(make_alert(), settings))
    assert html.rstrip() == (
        "<html><body><p>List of objects:</p>"
        "<ul><li><b>Person</b>: 99%</li><li><b>Horse</b>: 88%</li></ul>"
        '<p><img src="cid:image01" width="320" height="212" alt="snapshot"/></p>'
        "</body></html>"
    )


def vtest_alert(objects: int | None = None) -> Alert:
    """A real crowded scene as the local detector saw it (tests/data/local_detections.json),
    merged and drawn as the pipeline does; `objects` keeps only the most confident few."""
    found = detected("opencv_vtest_f0150.jpg")
    if objects is not None:
        first = found[0].label
        found = [MatchedLabel(replace(first, instances=first.instances[:objects]), "Person")]
    annotated = draw_boxes(Image.open(DATA / "opencv_vtest_f0150.jpg"), found)
    return Alert(
        "cam01", RECEIVED_AT, tuple(found), encode_jpeg(annotated), annotated.size, "150.jpg", 42
    )


def test_the_default_email_tells_camera_time_and_each_object_in_html() -> None:
    settings = email_settings("ses", message_html=None)
    alert = vtest_alert()
    message = build_alert_email(alert, settings)
    html = html_of(message)

    assert "Camera <b>cam01</b> saw 7 objects on" in html and "2026-11-23 at 21:58:03" in html
    rows = re.findall(r"<tr><td><b>(\w+)</b></td><td>(\d+)%</td><td>([^<]*)</td></tr>", html)
    assert [(name, int(percent)) for name, percent, _ in rows] == [
        ("Person", 95),
        ("Person", 86),
        ("Car", 80),
        ("Person", 78),
        ("Person", 66),
        ("Person", 53),
        ("Truck", 44),
    ]
    assert rows[-1][2] == "top right; also looked like Bus 31%, Car 28%"  # the van, named once
    (image,) = re.findall(r"<img [^>]*>", html)
    assert 'src="cid:image01"' in image and "max-width:100%" in image and "height:auto" in image
    assert "img.snapshot { display: block; width: 100%; max-width: 100%;" in html
    assert "#42" in html and "150.jpg" in html and "cam01_2026-11-23_21-58-03.jpg" in html
    text = text_of(message)
    assert "- Truck: 44%, top right; also looked like Bus 31%, Car 28%" in text
    assert message["Subject"] == "⚡ cam01: Person, Car, Truck at 21:58:03"
    # One copy of the picture: the message is the picture plus base64's third and some words.
    assert len(message.as_bytes()) < 1.45 * len(alert.annotated_jpeg)


SPAMASSASSIN = shutil.which("spamassassin")


def spam_score(message: EmailMessage) -> tuple[float, str]:
    """SpamAssassin's score with local rules only (no network, no learning), and its report."""
    if SPAMASSASSIN is None:
        pytest.fail(
            "spamassassin is missing: `make test` installs it (apt-get install spamassassin)"
        )
    report = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"],
        input=message.as_bytes(),
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode()
    score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert score, report
    return float(score[1]), report


@pytest.mark.parametrize("objects", [1, None])
def test_spamassassin_scores_a_default_alert_zero_or_less(objects: int | None) -> None:
    settings = email_settings(
        "smtp", message_html=None, sender_name="Ipcam Analysis", smtp=smtp_config(25)
    )
    message = build_alert_email(vtest_alert(objects), settings)
    score, report = spam_score(message)
    assert score <= 0, report
    # The original's two-copy message with its picture-only HTML, for comparison.
    old = build_alert_email(
        vtest_alert(objects),
        email_settings("smtp", smtp=smtp_config(25), message_html=ORIGINAL_MESSAGE_HTML),
    )
    assert "HTML_IMAGE_ONLY_04" in spam_score(old)[1]
