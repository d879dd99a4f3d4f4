"""Filters with memory, through the running service: stationary objects on a real surveillance
sequence, duplicate frames, cooldown and cloud budget across restarts, zones, per-camera settings."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

from PIL import Image

from harness.aws import Moto, label
from harness.mail_camera import camera_mail
from harness.service import DATA, RunningService, upload
from ipcam_analysis.cli import main
from ipcam_analysis.store import EventFilter
from tests.test_sources_service import send_mail

EVAL = Path(__file__).resolve().parents[1] / "eval" / "images"
PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
COFFEE_JPEG = (DATA / "skimage_coffee.jpg").read_bytes()
# People, by the local detector (tests/data/local_detections.json): 91.1 %, 94.4 %, 98.5 %.
BURST = ("opencv_vtest_f0300.jpg", "darknet_person.jpg", "opencv_vtest_f0750.jpg")


def events(service: RunningService) -> list[dict]:
    """Oldest first."""
    return list(reversed(service.service.store.events(EventFilter(limit=100))))


def frame(name: str) -> bytes:
    return (EVAL / name).read_bytes()


def test_parked_van_alerts_once_and_new_people_still_alert(run_service) -> None:
    """The vtest camera: a van and a car parked all along, people walking past."""
    service = run_service(
        detector={"type": "local"},
        workers=1,
        email={"transport": "none"},
        filters={"stationary": {"enabled": True}},
    )
    for name in (
        "opencv_vtest_f0000.jpg",
        "opencv_vtest_median_background.jpg",
        "opencv_vtest_f0150.jpg",
    ):
        upload(service.address, "cam01", frame(name), name)
        service.wait_idle(timeout=120)
    first, background, later = events(service)
    vehicles = {"Car", "Truck", "Bus"}
    assert first["outcome"] == "alert"
    assert "Person" in first["triggered"] and vehicles & set(first["triggered"])
    # Only the parked vehicles: all still where they were.
    assert background["outcome"] == "suppressed"
    assert "still there" in background["reason"]
    # People moved: a new alert, without the parked vehicles.
    assert later["outcome"] == "alert"
    assert "Person" in later["triggered"] and not vehicles & set(later["triggered"])


def test_duplicate_frames_skip_the_detector(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service(filters={"duplicate_hash_distance": 6})
    recompressed = io.BytesIO()
    Image.open(io.BytesIO(PERSON_JPEG)).save(recompressed, "JPEG", quality=60)
    for name, data in (
        ("a.jpg", PERSON_JPEG),
        ("b.jpg", recompressed.getvalue()),
        ("c.jpg", COFFEE_JPEG),
    ):
        upload(service.address, "cam01", data, name)
        service.wait_idle()
    assert [e["outcome"] for e in events(service)] == ["alert", "duplicate", "alert"]
    assert aws.rekognition.calls == 2  # the repeated frame never reached the cloud


def test_the_same_jpeg_twice_is_a_duplicate_not_an_error(run_service, aws: Moto) -> None:
    """The service as the CLI builds it (its log file, its secret masking): the repeated frame's
    log line once broke the masking filter, and the upload ended as an error with an e-mail."""
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service(filters={"duplicate_hash_distance": 6})
    for name in ("a.jpg", "b.jpg"):
        upload(service.address, "cam01", PERSON_JPEG, name)
        service.wait_idle()
    first, second = events(service)
    assert (first["outcome"], second["outcome"]) == ("alert", "duplicate")
    assert second["reason"] == "same picture as the last one (distance 0)"
    assert [mail["Subject"] for mail in aws.sent_emails()] == ["⚡ cam01: detected Person"]
    log_file = service.service.config.data_dir / "ipcam_analysis.log"
    assert (
        f"Same picture as the last one from cam01 (event {second['id']}, b.jpg) (distance 0):"
        " not analysed"
    ) in log_file.read_text(encoding="utf-8")


def test_cooldown_survives_a_restart(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    overrides = {"filters": {"cooldown_seconds": 3600}}
    first = run_service(**overrides)
    upload(first.address, "cam01", PERSON_JPEG, "one.jpg")
    first.wait_idle()
    first.service.stop()
    second = run_service(**overrides)
    upload(second.address, "cam01", PERSON_JPEG, "two.jpg")
    upload(second.address, "cam02", PERSON_JPEG, "other-camera.jpg")
    second.wait_idle()
    assert [(e["original_name"], e["outcome"]) for e in events(second)] == [
        ("one.jpg", "alert"),
        ("two.jpg", "suppressed"),
        ("other-camera.jpg", "alert"),  # the cooldown is per camera
    ]
    assert len(aws.sent_emails()) == 2


def test_cloud_budget_counts_across_a_restart_warns_once_and_stops_calls(
    run_service, aws: Moto
) -> None:
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    overrides = {"budget": {"daily_calls": 2, "warn_percent": 50, "on_exhausted": "none"}}
    first = run_service(**overrides)
    upload(first.address, "cam01", PERSON_JPEG, "1.jpg")
    first.wait_idle()
    first.service.stop()
    second = run_service(**overrides)
    for name in ("2.jpg", "3.jpg", "4.jpg"):
        upload(second.address, "cam01", PERSON_JPEG, name)
        second.wait_idle()
    assert [e["outcome"] for e in events(second)] == ["alert", "alert", "skipped", "skipped"]
    assert aws.rekognition.calls == 2
    notices = [m["Subject"] for m in aws.sent_emails() if "budget" in m["Subject"].lower()]
    assert len(notices) == 2  # one warning at 50 %, one when exhausted; never repeated


def test_zones_ignore_what_is_inside_them(run_service, aws: Moto) -> None:
    service = run_service(filters={"zones": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]})
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.1, 0.2, 0.2, 0.6),))]
    upload(service.address, "cam01", PERSON_JPEG, "left.jpg")
    service.wait_idle()
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.6, 0.2, 0.2, 0.6),))]
    upload(service.address, "cam01", PERSON_JPEG, "right.jpg")
    service.wait_idle()
    left, right = events(service)
    assert (left["outcome"], right["outcome"]) == ("no_match", "alert")
    assert "ignore zone" in left["reason"]


def test_per_camera_labels_and_recipients(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service(
        cameras={"cam02": {"labels": ["Car"]}, "cam01": {"recipients": ["guard@example.com"]}}
    )
    upload(service.address, "cam01", PERSON_JPEG, "a.jpg")
    upload(service.address, "cam02", PERSON_JPEG, "b.jpg")
    service.wait_idle()
    assert {e["camera"]: e["outcome"] for e in events(service)} == {
        "cam01": "alert",
        "cam02": "no_match",
    }
    (message,) = aws.sent_emails()
    assert message["To"] == "guard@example.com"


def test_zones_command_draws_them_over_the_latest_snapshot(
    run_service, aws: Moto, tmp_path: Path
) -> None:
    aws.rekognition.labels = []
    service = run_service(filters={"zones": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]})
    upload(service.address, "cam01", PERSON_JPEG, "a.jpg")
    service.wait_idle()
    service.service.stop()
    output = tmp_path / "zones.jpg"
    code = main(["zones", "cam01", "-c", str(tmp_path / "config.yaml"), "--output", str(output)])
    assert code == 0
    drawn = Image.open(output).convert("RGB")
    original = Image.open(io.BytesIO(PERSON_JPEG)).convert("RGB")
    assert drawn.size == original.size
    x, y = drawn.width // 4, drawn.height // 2  # inside the zone: shaded red
    assert drawn.getpixel((x, y))[0] > original.getpixel((x, y))[0] + 20
    x = drawn.width * 3 // 4  # outside: unchanged (within JPEG noise)
    assert abs(drawn.getpixel((x, y))[0] - original.getpixel((x, y))[0]) < 20
    assert main(["zones", "nobody", "-c", str(tmp_path / "config.yaml")]) == 1


def test_a_burst_is_one_decision_made_before_the_cooldown(run_service, aws: Moto) -> None:
    """Three pictures of people in one e-mail, the most confident last, and a cooldown: the
    burst alerts once, with that picture; the cooldown it starts does not silence its own
    burst, and the others name the picture that alerted."""
    service = run_service(
        detector={"type": "local"},
        labels=["Person"],
        filters={"cooldown_seconds": 3600},
        smtp_server={"enabled": True, "host": "127.0.0.1", "port": 0},
    )
    send_mail(service, camera_mail([(name, (DATA / name).read_bytes()) for name in BURST]))
    service.wait_idle(timeout=120)
    by_picture = {
        PurePosixPath(e["original_name"]).name.split("-", 3)[-1]: e for e in events(service)
    }
    best = by_picture[BURST[2]]
    assert best["outcome"] == "alert" and best["triggered"] == ["Person"]
    (message,) = aws.sent_emails()
    text = message.get_body(("plain",)).get_content()
    assert best["original_name"] in text and f"#{best['id']}" in text
    alerted = f"{PurePosixPath(best['original_name']).name} (event {best['id']})"
    for name in BURST[:2]:
        assert by_picture[name]["outcome"] == "suppressed"
        assert by_picture[name]["reason"] == f"part of the burst alerted with {alerted}"
