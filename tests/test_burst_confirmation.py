"""Several pictures agree (`filters.confirm`), through the running service with the local
detector: bursts of real pictures sent by e-mail, and single pictures that wait for the next."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps

from harness.mail_camera import camera_mail
from harness.service import upload
from tests.test_filters_service import events
from tests.test_sources_service import send_mail

EVAL = Path(__file__).resolve().parents[1] / "eval" / "images"
# The local model calls this great blue heron Person 35 %; it was pasted on lomiri_seeding.jpg.
HERON = "cutout_heron_greatblue.jpg"
PEOPLE = ("opencv_vtest_f0300.jpg", "opencv_vtest_f0450.jpg", "opencv_vtest_f0600.jpg")


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_a_weak_detection_in_one_picture_of_a_burst_does_not_alert(run_service) -> None:
    """The heron walks through one picture of three: its weak Person is seen in no other, and
    the e-mail does not alert. People walking, in all three pictures, still do."""
    heron = Image.open(EVAL / HERON).convert("RGB")
    pond = ImageOps.fit(Image.open(EVAL / "lomiri_seeding.jpg").convert("RGB"), heron.size)
    passing = [("1.jpg", jpeg(pond, 85)), ("2.jpg", (EVAL / HERON).read_bytes())]
    passing.append(("3.jpg", jpeg(pond, 80)))
    service = run_service(
        detector={"type": "local"},
        labels=["Person"],
        workers=1,
        email={"transport": "none"},
        filters={"confirm": {"weak_below_percent": 50}},
        smtp_server={"enabled": True, "host": "127.0.0.1", "port": 0},
    )
    send_mail(service, camera_mail(passing))
    service.wait_idle(timeout=180)
    by_picture = {PurePosixPath(e["original_name"]).name[-5:]: e for e in events(service)}
    heron_event = by_picture["2.jpg"]
    assert heron_event["outcome"] == "suppressed"
    assert "Person 35% seen in no other picture of the burst" in heron_event["reason"]
    assert {by_picture[name]["outcome"] for name in ("1.jpg", "3.jpg")} == {"no_match"}

    send_mail(service, camera_mail([(name, (EVAL / name).read_bytes()) for name in PEOPLE]))
    service.wait_idle(timeout=180)
    walking = [e for e in events(service) if any(n in e["original_name"] for n in PEOPLE)]
    assert [e["outcome"] for e in walking].count("alert") == 1


def test_a_single_weak_picture_waits_for_the_cameras_next(run_service) -> None:
    """cam01 waits up to a minute: the heron, then the empty pond (its next picture saw no
    Person): not alerted. cam02 waits 2 s: the heron twice, the first is confirmed by the
    second and alerts, the second waits for a third in vain."""
    heron = (EVAL / HERON).read_bytes()
    pond = ImageOps.fit(
        Image.open(EVAL / "lomiri_seeding.jpg").convert("RGB"),
        Image.open(EVAL / HERON).size,
    )
    service = run_service(
        detector={"type": "local"},
        labels=["Person"],
        workers=1,
        email={"transport": "none"},
        filters={"confirm": {"weak_below_percent": 50, "wait_seconds": 60}},
        cameras={"cam02": {"filters": {"confirm": {"weak_below_percent": 50, "wait_seconds": 2}}}},
    )
    for camera, name, data in (
        ("cam01", "heron.jpg", heron),
        ("cam01", "pond.jpg", jpeg(pond, 85)),
        ("cam02", "heron1.jpg", heron),
        ("cam02", "heron2.jpg", jpeg(Image.open(io.BytesIO(heron)), 75)),
    ):
        upload(service.address, camera, data, name)
    service.wait_idle(timeout=180)
    by_name = {e["original_name"]: e for e in events(service)}
    assert by_name["heron.jpg"]["outcome"] == "no_match"
    assert "Person 35% not seen in the camera's next picture" in by_name["heron.jpg"]["reason"]
    assert by_name["pond.jpg"]["outcome"] == "no_match"
    assert by_name["heron1.jpg"]["outcome"] == "alert"
    assert by_name["heron2.jpg"]["outcome"] == "no_match"
    assert "seen in no other picture within 2 s" in by_name["heron2.jpg"]["reason"]
