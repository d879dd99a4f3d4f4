"""Video clips uploaded by FTP (ftplib) → PyAV → the local detector on sampled frames → one
SMTP alert with the clip's best frame, boxed, and where in the clip the person appeared."""

from __future__ import annotations

import io
import smtplib
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image, ImageChops

from harness.aws import Moto, label
from harness.clips import EMPTY_STREET, PEOPLE, encode_clip, held, person_walks_in
from harness.mail_camera import camera_mail
from harness.service import PASSWORDS, upload, wait_until
from harness.smtp import HOST, SmtpSink
from harness.web import event_record, snapshot_of
from harness.webhook import WebhookSink
from ipcam_analysis.imaging.clips import clip_duration_seconds, sample_frames
from ipcam_analysis.store import EventFilter
from tests.test_store import open_store, snapshot_dir

CLIP_NAMES = {
    "mp4": "clip.mp4",
    "mov": "clip.mov",
    "mkv": "clip.mkv",
    "h264": "clip.h264",
    "h265": "clip.h265",
    "hxvs": "clip.264",
    "dav": "clip.dav",
}


def clip_settings(smtp_sink: SmtpSink) -> dict[str, Any]:
    return {
        "detector": {"type": "local"},
        "labels": ["Person"],
        "email": {
            "transport": "smtp",
            "smtp": {"host": HOST, "port": smtp_sink.port, "security": "none"},
        },
        "http_ingest": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "smtp_server": {"enabled": True, "host": "127.0.0.1", "port": 0},
    }


@pytest.fixture
def clip_service(run_service, smtp_sink: SmtpSink):
    return run_service(**clip_settings(smtp_sink))


@pytest.mark.parametrize("kind", list(CLIP_NAMES))
def test_a_person_walking_into_a_clip_gives_one_alert_with_the_best_frame(
    clip_service, smtp_sink: SmtpSink, kind: str
) -> None:
    name = f"2026-12-06/001/{CLIP_NAMES[kind]}"
    clip = encode_clip(person_walks_in(), kind)
    upload(clip_service.address, "cam01", clip, name)
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [(name, "alert")]
    (message,) = wait_until(lambda: smtp_sink.messages, what="the alert e-mail")
    assert message["Subject"].endswith("cam01: detected Person")
    text = message.get_body(("plain",)).get_content()
    assert "- In the clip: Person from 0:03 (" in text
    (picture,) = [part for part in message.walk() if part.get_content_maintype() == "image"]
    drawn = Image.open(io.BytesIO(picture.get_content()))
    drawn.load()
    assert drawn.size == (768, 576)
    # The best frame is one of the frames with people, boxes drawn over it: it differs from
    # each of them far more than the encoding does.
    differences = [_changed_share(drawn, Image.open(path)) for path in PEOPLE]
    assert min(differences) > 0.005
    (event,) = clip_service.service.store.events(EventFilter(camera="cam01"))
    assert event["reason"].startswith("Person from 0:03 (")
    # The clip is kept with the event: the page plays an MP4 and offers the others.
    base = clip_service.service.web.url.rstrip("/")
    page = httpx.get(f"{base}/events/{event['id']}").text
    kept = httpx.get(f"{base}/clips/{event['id']}")
    assert kept.status_code == 200 and kept.content == clip
    if kind in ("mp4", "mov"):  # kept as an MP4, which a browser plays
        assert kept.headers["content-type"] == "video/mp4"
        assert f'<video class="clip" controls preload="metadata" src="/clips/{event["id"]}"' in page
    else:
        assert "Download the clip</a> (a browser cannot play this format" in page


def test_clips_pushed_over_http_and_attached_to_an_e_mail_alert_alike(
    clip_service, smtp_sink: SmtpSink
) -> None:
    clip = encode_clip(person_walks_in(), "mp4")
    host, port = clip_service.service.sources["http"].address
    answer = httpx.post(
        f"http://{host}:{port}/upload?name=porch.mp4",
        content=clip,
        headers={"Content-Type": "video/mp4"},
        auth=("cam01", PASSWORDS["cam01"]),
        timeout=30,
    )
    assert answer.status_code == 201
    clip_service.wait_idle(timeout=120)
    with smtplib.SMTP(*clip_service.service.sources["smtp"].address, timeout=30) as client:
        client.login("cam02", PASSWORDS["cam02"])
        client.send_message(camera_mail(other=[("alarm.mp4", "video/mp4", clip)]))
    clip_service.wait_idle(timeout=120)

    events = clip_service.service.store.events(EventFilter())
    assert sorted((e["source"], e["outcome"], e["reason"][:16]) for e in events) == [
        ("http", "alert", "Person from 0:03"),
        ("smtp", "alert", "Person from 0:03"),
    ]
    messages = wait_until(lambda: len(smtp_sink.messages) == 2 and smtp_sink.messages)
    assert all("Person from 0:03" in m.get_body(("plain",)).get_content() for m in messages)


def test_a_snapshot_and_a_clip_of_the_same_motion_alert_once(
    clip_service, smtp_sink: SmtpSink
) -> None:
    upload(clip_service.address, "cam01", PEOPLE[0].read_bytes(), "motion.jpg")
    clip_service.wait_idle(timeout=120)
    upload(clip_service.address, "cam01", encode_clip(person_walks_in(), "mp4"), "motion.mp4")
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [("motion.jpg", "alert"), ("motion.mp4", "suppressed")]
    clip_event, snapshot_event = clip_service.service.store.events(EventFilter(camera="cam01"))
    assert clip_event["reason"].startswith("Person from 0:03 (0:07 clip, 7 frames analysed); ")
    assert (
        f"Person already alerted by the snapshot of event {snapshot_event['id']}"
        in (clip_event["reason"])
    )
    (message,) = wait_until(lambda: smtp_sink.messages, what="the snapshot's alert")
    assert "In the clip" not in message.get_body(("plain",)).get_content()


def test_a_clip_analysed_while_its_snapshot_is_being_sent_alerts_once(
    run_service, smtp_sink: SmtpSink, webhook_sink: WebhookSink
) -> None:
    clip_service = run_service(**clip_settings(smtp_sink), notify=[webhook_sink.url("/hook")])
    # The snapshot's e-mail, the first of two channels, waits for the mail server: its alert is
    # decided, and saved only with that channel's mark.
    smtp_sink.hold("RCPT")
    upload(clip_service.address, "cam01", PEOPLE[0].read_bytes(), "motion.jpg")
    wait_until(smtp_sink.holding.is_set, timeout=120, what="the snapshot's e-mail")
    upload(clip_service.address, "cam01", encode_clip(person_walks_in(), "mp4"), "motion.mp4")

    # Another worker takes the clip meanwhile: it waits for the snapshot (or, were it not to,
    # its own e-mail would wait at the mail server beside the snapshot's).
    wait_until(lambda: waits_or_sends(clip_service, smtp_sink, "motion.mp4"), timeout=120)
    smtp_sink.stop_holding()
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [("motion.jpg", "alert"), ("motion.mp4", "suppressed")]
    clip_event, snapshot_event = clip_service.service.store.events(EventFilter(camera="cam01"))
    assert (
        f"Person already alerted by the snapshot of event {snapshot_event['id']}"
        in (clip_event["reason"])
    )
    assert len(smtp_sink.messages) == 1 and len(webhook_sink.received("/hook")) == 1


def waits_or_sends(running, smtp_sink: SmtpSink, name: str) -> bool:
    """The upload is back in the queue waiting for another of its motion, or its e-mail waits
    at the mail server beside the other's."""
    rows = running.service.database.query(
        "SELECT last_error FROM uploads WHERE original_name = $1", (name,)
    )
    return smtp_sink.held == 2 or bool(rows and (rows[0][0] or "").startswith("waiting for"))


def test_a_snapshot_sent_while_its_clip_is_being_sent_alerts_once(
    run_service, smtp_sink: SmtpSink, webhook_sink: WebhookSink
) -> None:
    clip_service = run_service(**clip_settings(smtp_sink), notify=[webhook_sink.url("/hook")])
    # The clip's e-mail, the first of two channels, waits for the mail server: its alert is
    # decided, and saved only with that channel's mark.
    smtp_sink.hold("RCPT")
    upload(clip_service.address, "cam01", encode_clip(person_walks_in(), "mp4"), "motion.mp4")
    wait_until(smtp_sink.holding.is_set, timeout=120, what="the clip's e-mail")
    upload(clip_service.address, "cam01", PEOPLE[0].read_bytes(), "motion.jpg")

    wait_until(lambda: waits_or_sends(clip_service, smtp_sink, "motion.jpg"), timeout=120)
    smtp_sink.stop_holding()
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [("motion.mp4", "alert"), ("motion.jpg", "suppressed")]
    snapshot_event, clip_event = clip_service.service.store.events(EventFilter(camera="cam01"))
    assert snapshot_event["reason"] == (
        f"Person already alerted by the clip of event {clip_event['id']}"
    )
    assert len(smtp_sink.messages) == 1 and len(webhook_sink.received("/hook")) == 1


def test_a_snapshot_and_a_clip_in_one_e_mail_are_decided_together(
    clip_service, smtp_sink: SmtpSink
) -> None:
    mail = camera_mail(
        [("motion.jpg", PEOPLE[0].read_bytes())],
        other=[("motion.mp4", "video/mp4", encode_clip(person_walks_in(), "mp4"))],
    )
    with smtplib.SMTP(*clip_service.service.sources["smtp"].address, timeout=30) as client:
        client.login("cam01", PASSWORDS["cam01"])
        client.send_message(mail)

    # The e-mail's two uploads wait for each other as one burst, never as one motion: the
    # clip waiting for the snapshot while the snapshot waits for the burst's clip would hold
    # both until the burst's wait ran out.
    waited_for_the_motion = set()

    def both_done() -> bool:
        rows = clip_service.service.database.query(
            "SELECT original_name, state, last_error FROM uploads"
        )
        waited_for_the_motion.update(
            name
            for name, _, why in rows
            if (why or "").startswith(("waiting for event", "waiting for the clip"))
        )
        return len(rows) == 2 and all(state == "done" for _, state, _ in rows)

    wait_until(both_done, timeout=120, what="the e-mail's two uploads")
    assert waited_for_the_motion == set()
    assert sorted(outcome for _, outcome in clip_service.outcomes()) == ["alert", "suppressed"]
    assert len(wait_until(lambda: smtp_sink.messages, what="the alert")) == 1


def test_a_snapshot_sent_after_the_clip_of_its_motion_does_not_alert_again(
    clip_service, smtp_sink: SmtpSink
) -> None:
    upload(clip_service.address, "cam01", encode_clip(person_walks_in(), "mp4"), "motion.mp4")
    clip_service.wait_idle(timeout=120)
    upload(clip_service.address, "cam01", PEOPLE[0].read_bytes(), "motion.jpg")
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [("motion.mp4", "alert"), ("motion.jpg", "suppressed")]
    snapshot_event, clip_event = clip_service.service.store.events(EventFilter(camera="cam01"))
    assert (
        snapshot_event["reason"]
        == f"Person already alerted by the clip of event {clip_event['id']}"
    )
    (message,) = wait_until(lambda: smtp_sink.messages, what="the clip's alert")
    assert "In the clip: Person from 0:03" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("kind", list(CLIP_NAMES))
def test_a_clip_without_people_gives_no_alert(clip_service, smtp_sink: SmtpSink, kind: str) -> None:
    name = f"empty-{CLIP_NAMES[kind]}"
    upload(clip_service.address, "cam01", encode_clip(held(EMPTY_STREET, 6), kind), name)
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [(name, "no_match")]
    (event,) = clip_service.service.store.events(EventFilter(camera="cam01"))
    # A raw stream has no duration in it: its frames are counted.
    assert event["reason"].endswith("0:06 clip, 6 frames analysed; not in labels: Car, Truck")
    assert smtp_sink.messages == []


def test_a_truncated_clip_is_an_unreadable_clip_not_an_error(
    clip_service, smtp_sink: SmtpSink
) -> None:
    whole = encode_clip(person_walks_in(), "mp4")
    for number in range(3):  # no error e-mail for any of them, however many come
        upload(clip_service.address, "cam01", whole[: len(whole) // 2], f"cut{number}.mp4")
    upload(clip_service.address, "cam01", b"HXVS" + bytes(12) + b"garbage" * 10, "bad.264")
    # A Dahua upload cut off inside its first record's header.
    upload(clip_service.address, "cam01", encode_clip(person_walks_in(), "dav")[:30], "cut.dav")
    clip_service.wait_idle(timeout=120)

    assert [outcome for _, outcome in clip_service.outcomes()] == ["unreadable_clip"] * 5
    events = clip_service.service.store.events(EventFilter(camera="cam01"))
    reasons = {event["reason"] for event in events}
    assert reasons == {
        "truncated or damaged MP4/MOV clip (Invalid data found when processing input)",
        "damaged XMeye/HiSilicon clip (unknown record b'garb' at byte 16)",
        "no frame of the Dahua DAV clip could be decoded",
    }
    assert smtp_sink.messages == []


@pytest.mark.parametrize("kind", ["hxvs", "dav"])
def test_a_clip_cut_short_is_analysed_as_far_as_it_goes(
    clip_service, smtp_sink: SmtpSink, kind: str
) -> None:
    whole = encode_clip(person_walks_in(), kind)
    name = f"cut-{CLIP_NAMES[kind]}"
    upload(clip_service.address, "cam01", whole[: len(whole) * 3 // 4], name)
    clip_service.wait_idle(timeout=120)

    assert clip_service.outcomes() == [(name, "alert")]
    (message,) = wait_until(lambda: smtp_sink.messages, what="the alert e-mail")
    assert "Person from 0:03" in message.get_body(("plain",)).get_content()


PERSON = label("Person", 98.7, boxes=((0.4, 0.3, 0.1, 0.4),))


def test_the_cloud_detector_sees_at_most_five_frames_of_a_clip(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service()
    upload(service.address, "cam01", encode_clip(person_walks_in(7, 1), "mp4"), "long.mp4")
    service.wait_idle(timeout=120)

    assert service.outcomes() == [("long.mp4", "alert")]
    # 11 s: a frame every 2.2 s, 5 in all, each a JPEG of the clip's size.
    assert aws.rekognition.calls == 5
    sizes = {Image.open(io.BytesIO(request["image"])).size for request in aws.rekognition.requests}
    assert sizes == {(768, 576)}
    (message,) = aws.sent_emails()
    assert (
        "Person from 0:00 (0:11 clip, 5 frames analysed)"
        in message.get_body(("plain",)).get_content()
    )


def test_each_frame_sent_to_the_cloud_counts_against_the_budget(run_service, aws: Moto) -> None:
    aws.rekognition.labels = [PERSON]
    service = run_service(budget={"daily_calls": 3, "on_exhausted": "none"})
    upload(service.address, "cam01", encode_clip(person_walks_in(7, 1), "mp4"), "first.mp4")
    service.wait_idle(timeout=120)
    upload(service.address, "cam01", encode_clip(person_walks_in(7, 1), "mp4"), "second.mp4")
    service.wait_idle(timeout=120)

    assert service.outcomes() == [("first.mp4", "alert"), ("second.mp4", "skipped")]
    assert aws.rekognition.calls == 3
    # Besides the budget's own notices, one alert.
    (message,) = [mail for mail in aws.sent_emails() if "detected Person" in mail["Subject"]]
    assert "(0:11 clip, 3 frames analysed)" in message.get_body(("plain",)).get_content()


def test_ffmpeg_reads_the_harness_dahua_clip_as_a_recorders_file() -> None:
    # FFmpeg recognises the records itself, and takes the size, codec and rate from the first
    # key frame's extension fields; the length is measured from the frames' times.
    clip = encode_clip(person_walks_in(), "dav")
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        frames = sum(len(packet.decode()) for packet in container.demux(stream))
        assert container.format.name == "dhav"
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 768, 576)
        assert stream.average_rate == 5 and frames == 35
    assert clip_duration_seconds(clip, "dhav") == 7.0


@pytest.mark.parametrize("key_every", [1, 4])
def test_a_frame_a_second_whatever_the_key_frame_interval(key_every: int) -> None:
    clip = encode_clip(person_walks_in(3, 2), "mp4", key_every=key_every)
    offsets = [frame.offset_seconds for frame in sample_frames(clip, "mp4", 1.0, 60)]
    assert offsets == [float(second) for second in range(11)]
    assert [frame.offset_seconds for frame in sample_frames(clip, "mp4", 1.0, 4)] == [0, 1, 2, 3]


def test_kept_clips_count_against_retention_and_go_with_their_pictures(tmp_path: Path) -> None:
    clip = encode_clip(person_walks_in(1, 0.4), "mkv")
    one_event = len(clip) + len(snapshot_of().data)  # the clip and the picture
    store = open_store(tmp_path, max_snapshots_mb=2.5 * one_event / 1024 / 1024)
    for number in range(1, 5):
        record = event_record(number, snapshot=snapshot_of())
        store.record(replace(record, clip=clip, clip_suffix=".mkv"))
    kept = [e["id"] for e in store.events(EventFilter()) if e["clip"]]
    assert kept == [4, 3]
    assert store.snapshot(4, clip=True).read_bytes() == clip
    assert store.snapshot(1, clip=True) is None
    assert sorted(p.name for p in snapshot_dir(tmp_path).rglob("*.mkv")) == ["3.mkv", "4.mkv"]


def _changed_share(drawn: Image.Image, original: Image.Image) -> float:
    """The share of pixels that differ clearly (beyond what encoding changes)."""
    difference = ImageChops.difference(drawn.convert("L"), original.convert("L"))
    changed = sum(difference.point(lambda value: 255 if value > 60 else 0).histogram()[255:])
    return changed / (drawn.width * drawn.height)
