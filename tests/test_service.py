"""The whole service end to end: real FTP clients → queue → Rekognition (moto) → SES (moto)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from PIL import Image

from harness.aws import Moto, label
from harness.proxy import OutageProxy
from harness.service import DATA, RunningService, upload, wait_until

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 98.7, aliases=("Human",), boxes=((0.25, 0.2, 0.2, 0.6),))
CAR = label("Car", 93.0, parents=("Vehicle", "Transportation"), boxes=((0.6, 0.5, 0.3, 0.3),))
VEHICLE = label("Vehicle", 93.0, parents=("Transportation",))
TREE = label("Tree", 90.0, parents=("Plant",))


def encoded(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def attachment_image(message) -> Image.Image:
    jpeg = next(
        part for part in message.iter_attachments() if part.get_content_type() == "image/jpeg"
    )
    return Image.open(io.BytesIO(jpeg.get_content()))


def test_person_upload_sends_an_alert_email(run_service, aws: Moto, tmp_path: Path) -> None:
    aws.rekognition.labels = [PERSON, TREE]
    service = run_service()
    upload(service.address, "cam01", PERSON_JPEG, "2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg")
    service.wait_idle()

    assert service.outcomes() == [("2026-11-23/001/jpg/10/23/45[M][0@0][0].jpg", "alert")]
    (request,) = aws.rekognition.requests
    assert request["MinConfidence"] == 80 and request["MaxLabels"] == 10
    assert request["image"] == PERSON_JPEG  # small enough: the original bytes are sent
    (message,) = aws.sent_emails()
    assert message["To"] == "owner@example.com"
    assert "cam01" in message["Subject"] and "Person" in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "<tr><td><b>Person</b></td><td>99%</td>" in html and "Tree" not in html
    assert "Camera <b>cam01</b> saw 1 object on" in html
    image = attachment_image(message)
    assert image.size == Image.open(io.BytesIO(PERSON_JPEG)).size
    # The upload and the dated folders the camera made are gone; the camera's home stays.
    home = tmp_path / "ftp" / "cam01"
    wait_until(lambda: not any(home.iterdir()), what="the upload to be removed")
    assert home.is_dir()


def test_alias_matching_and_no_match(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [TREE]
    service = run_service(labels=["human"])
    upload(service.address, "cam01", PERSON_JPEG, "tree.jpg")
    service.wait_idle()
    aws.rekognition.labels = [PERSON]
    upload(service.address, "cam01", PERSON_JPEG, "person.jpg")
    service.wait_idle()
    assert service.outcomes() == [("tree.jpg", "no_match"), ("person.jpg", "alert")]
    assert len(aws.sent_emails()) == 1


def test_new_labels_mode_alerts_on_unlisted_things(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON, CAR, VEHICLE, TREE]
    service = run_service(labels=["Person", "Plant"], new_labels_only=True)
    upload(service.address, "cam02", PERSON_JPEG, "a.jpg")
    service.wait_idle()
    (message,) = aws.sent_emails()
    html = message.get_body(("html",)).get_content()
    assert "<tr><td><b>Car (Vehicle, Transportation)</b></td><td>93%</td>" in html
    assert "<b>Person</b>" not in html and "Tree" not in html


def test_non_images_and_damaged_images_send_no_email(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service()
    upload(service.address, "cam01", b"", "empty.jpg")
    upload(service.address, "cam01", b"FTP test from camera\n", "test.txt")
    upload(service.address, "cam01", PERSON_JPEG[: len(PERSON_JPEG) // 2], "truncated.jpg")
    upload(service.address, "cam01", encoded(Image.new("RGB", (64, 64)), "GIF"), "anim.gif")
    service.wait_idle()
    assert dict(service.outcomes()) == {
        "empty.jpg": "not_image",
        "test.txt": "not_image",
        "truncated.jpg": "corrupt",
        "anim.gif": "not_image",
    }
    assert aws.rekognition.calls == 0
    assert aws.sent_emails() == []


def test_greyscale_rgba_palette_and_png_images_alert(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service()
    photo = Image.open(io.BytesIO(PERSON_JPEG))
    uploads = {
        "ir-night.jpg": encoded(photo.convert("L")),
        "rgba.png": encoded(photo.convert("RGBA"), "PNG"),
        "palette.png": encoded(photo.convert("P"), "PNG"),
    }
    for name, data in uploads.items():
        upload(service.address, "cam01", data, name)
    service.wait_idle()
    assert set(service.outcomes()) == {(name, "alert") for name in uploads}
    for message in aws.sent_emails():
        image = attachment_image(message)
        assert image.mode == "RGB"
        # A yellow box was drawn where the person is (greyscale input included).
        x, y = int(image.width * 0.25), int(image.height * 0.5)
        red, green, blue = image.getpixel((x, y))
        assert red > 180 and green > 180 and blue < 100


def test_huge_image_is_scaled_down_before_rekognition(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service(rekognition={"image_resize_percent": 50})
    big = Image.effect_noise((5000, 3400), 60).convert("RGB")  # 17 MP of noise: > 5 MB as JPEG
    data = encoded(big)
    upload(service.address, "cam01", data, "big.jpg")
    service.wait_idle(timeout=120)
    (request,) = aws.rekognition.requests
    sent = Image.open(io.BytesIO(request["image"]))
    assert len(request["image"]) <= 5 * 1024 * 1024
    assert sent.width <= 2500 and sent.width * sent.height <= 15_000_000
    (message,) = aws.sent_emails()
    assert attachment_image(message).size == (2500, 1700)  # image_resize_percent: 50


def test_outside_time_window_no_call_no_email_file_removed(
    run_service, aws: Moto, tmp_path: Path
) -> None:
    aws.rekognition.labels = [PERSON]
    now = time.localtime()
    start = f"{(now.tm_hour + 2) % 24}:00"
    end = f"{(now.tm_hour + 3) % 24}:00"
    service = run_service(time_window={"start": start, "end": end})
    upload(service.address, "cam01", PERSON_JPEG, "night/x.jpg")
    service.wait_idle()
    assert service.outcomes() == [("night/x.jpg", "outside_window")]
    assert aws.rekognition.calls == 0 and aws.sent_emails() == []
    wait_until(lambda: not any((tmp_path / "ftp" / "cam01").iterdir()), what="the file removed")


def start_outage(aws: Moto, monkeypatch, endpoint_variable: str) -> OutageProxy:
    """AWS (or one service of it) reached through a proxy that is cut from the start."""
    host, port = aws.endpoint.removeprefix("http://").split(":")
    proxy = OutageProxy((host, int(port)))
    monkeypatch.setenv(endpoint_variable, proxy.url)
    proxy.cut()
    aws.rekognition.labels = [PERSON]
    return proxy


def upload_during_outage(service: RunningService, name: str) -> None:
    """The upload is accepted and waits in the queue while the outage lasts."""
    upload(service.address, "cam01", PERSON_JPEG, name)
    wait_until(
        lambda: service.service.database.query("SELECT attempts FROM uploads")[0][0] >= 2,
        what="a few failed attempts",
    )


def test_rekognition_unreachable_then_back_delivers_the_alert(
    run_service, aws: Moto, monkeypatch
) -> None:
    proxy = start_outage(aws, monkeypatch, "AWS_ENDPOINT_URL")
    service = run_service()
    upload_during_outage(service, "during-outage.jpg")
    assert service.service.queue.depth() == 1 and aws.sent_emails() == []
    proxy.restore()
    service.wait_idle()
    assert service.outcomes() == [("during-outage.jpg", "alert")]
    assert len(aws.sent_emails()) == 1


def test_mail_outage_retries_without_paying_rekognition_again(
    run_service, aws: Moto, monkeypatch
) -> None:
    proxy = start_outage(aws, monkeypatch, "AWS_ENDPOINT_URL_SESV2")  # only SES is cut off
    service = run_service()
    upload_during_outage(service, "x.jpg")
    proxy.restore()
    service.wait_idle()
    assert service.outcomes() == [("x.jpg", "alert")]
    assert aws.rekognition.calls == 1
    assert len(aws.sent_emails()) == 1


def test_permanent_ses_refusal_ends_as_error(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service(email={"sender_email": "unverified@example.com"})
    upload(service.address, "cam01", PERSON_JPEG, "x.jpg")
    service.wait_idle()
    assert aws.rekognition.calls == 1
    assert aws.sent_emails() == []
    state = service.service.database.query("SELECT outcome, last_error FROM uploads")[0]
    assert state["outcome"] == "alert"
    assert "verified" in state["last_error"]


def test_slow_rekognition_does_not_block_other_cameras(run_service, aws: Moto) -> None:
    answered = threading.Event()  # the cloud answers once the other camera was served

    def slow_cloud(image: bytes) -> list[dict[str, object]]:
        answered.wait(60)
        return [PERSON]

    aws.rekognition.answer = slow_cloud
    service = run_service()
    upload(service.address, "cam01", PERSON_JPEG, "slow.jpg")
    wait_until(lambda: aws.rekognition.calls == 1, what="the slow call to start")
    upload(service.address, "cam02", PERSON_JPEG, "other.jpg")
    assert service.outcomes() == []  # served while the first analysis still waits on the cloud
    answered.set()
    service.wait_idle()
    assert len(aws.sent_emails()) == 2


def test_files_left_on_disk_by_a_crash_are_processed_at_start(
    run_service, aws: Moto, tmp_path: Path
) -> None:
    # pyftpdlib answers 226 before the upload hook runs: a crash in between leaves only the file.
    aws.rekognition.labels = [PERSON]
    leftover = tmp_path / "ftp" / "cam02" / "2026-11-23" / "left.jpg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(PERSON_JPEG)
    service = run_service()
    service.wait_idle()
    assert service.outcomes() == [("2026-11-23/left.jpg", "alert")]
    wait_until(lambda: not leftover.parent.exists(), what="the leftover removed")


def test_error_email_once_per_failure_streak_per_camera(run_service, aws: Moto) -> None:
    service = run_service()

    def errors() -> list:
        return [m for m in aws.sent_emails() if m["Subject"] == "Image processing error"]

    aws.rekognition.error = (400, "InvalidImageFormatException", "Request has invalid image format")
    for name in ("bad-1.jpg", "bad-2.jpg"):
        upload(service.address, "cam01", PERSON_JPEG, name)
        service.wait_idle()
    (first,) = errors()  # two failures, one e-mail
    text = first.get_body(("plain",)).get_content()
    assert "cam01" in text and "InvalidImageFormatException" in text and "Server:" in text
    aws.rekognition.error = None
    aws.rekognition.labels = [PERSON]
    upload(service.address, "cam01", PERSON_JPEG, "good.jpg")  # a success ends the streak
    service.wait_idle()
    aws.rekognition.error = (400, "InvalidImageFormatException", "Request has invalid image format")
    upload(service.address, "cam01", PERSON_JPEG, "bad-3.jpg")
    service.wait_idle()
    assert len(errors()) == 2
    assert [o for _, o in service.outcomes()] == ["error", "error", "alert", "error"]


def test_a_picture_in_which_nothing_is_found_says_so(run_service, aws: Moto) -> None:
    service = run_service()  # Rekognition answers no label
    upload(service.address, "cam01", PERSON_JPEG, "empty.jpg")
    service.wait_idle()
    rows = service.service.database.query("SELECT outcome, reason FROM events")
    assert [(row[0], row[1]) for row in rows] == [("no_match", "nothing found")]
