"""What the user sees: a crowded street through FTP → local detector → SMTP, MQTT-free."""

from __future__ import annotations

import io

from PIL import Image

from harness.service import DATA, upload, wait_until
from harness.smtp import HOST, SmtpSink
from ipcam_analysis.imaging.annotate import plan_annotation
from ipcam_analysis.store import EventFilter
from ipcam_analysis.values import MatchedLabel, label_from_dict
from tests.test_annotate import assert_readable


def test_a_crowded_street_alerts_once_per_object_with_captions_that_read(
    run_service, smtp_sink: SmtpSink
) -> None:
    service = run_service(
        detector={"type": "local"},
        labels=["Person", "Vehicle"],
        email={
            "transport": "smtp",
            "smtp": {"host": HOST, "port": smtp_sink.port, "security": "none"},
        },
    )
    frame = (DATA / "opencv_vtest_f0150.jpg").read_bytes()
    upload(service.address, "cam01", frame, "street/150.jpg")
    service.wait_idle()

    (message,) = wait_until(lambda: smtp_sink.messages, what="the alert e-mail")
    # One van, one name: the detector's Car 28 % / Truck 44 % / Bus 31 % is one Truck.
    assert message["Subject"].endswith("cam01: detected Person, Car, Truck")
    html = message.get_body(("html",)).get_content()
    assert "Camera <b>cam01</b> saw 7 objects on" in html
    assert "also looked like Bus 31%, Car 28%" in html
    (picture,) = [part for part in message.walk() if part.get_content_maintype() == "image"]
    drawn = Image.open(io.BytesIO(picture.get_content()))

    (event,) = service.service.store.events(EventFilter(camera="cam01"))
    labels = [label_from_dict(data) for data in service.service.store.event(event["id"])["labels"]]
    assert {label.name: len(label.instances) for label in labels} == {
        "Person": 5,
        "Car": 1,
        "Truck": 1,
    }
    # The picture as drawn: every caption inside it, none over another or a foreign box.
    plan = plan_annotation((768, 576), [MatchedLabel(label, label.name) for label in labels])
    assert drawn.size == plan.size == (768, 576) and not plan.legend
    assert len(plan.captions) == 7
    assert_readable(plan, drawn.size)
