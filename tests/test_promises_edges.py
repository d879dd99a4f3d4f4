"""Promises at the service's edges that only a hostile or unlucky input tests: every dashboard
path the app serves asks for the login, a tampered picture key never reaches the bucket, a short
frame on the alarm port does no harm, and an alert sent again later keeps its Message-ID."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from starlette.routing import Mount, Route

from harness.aws import REGION, Moto
from harness.service import wait_until
from harness.smtp import SmtpSink
from harness.web import Dashboard, basic_auth
from ipcam_analysis.ingest.alarm_frames import HEADER, parse_alarms
from ipcam_analysis.notify.email import EmailNotifier
from ipcam_analysis.notify.smtp import SmtpTransport
from ipcam_analysis.store import StorageSettings, open_storage
from tests.test_ingest_alarm import HUMAN, alarm_frame
from tests.test_notify_email import email_settings, make_alert, smtp_config
from tests.test_web import PASSWORD, PASSWORD_HASH, with_events

EVENT_WITH_PICTURE = "2"  # see with_events
STATIC_FILE = "style.css"
OPEN_PATHS = {"/healthz"}  # for monitoring probes; stated here, not read from the product


def served_paths(dashboard: Dashboard) -> list[tuple[str, str]]:
    """(method, path) for every route the app serves, its parameters filled with an event that
    has a picture: a route added later is covered without editing this test."""
    paths = []
    for route in dashboard.app.routes:
        if isinstance(route, Mount):
            paths.append(("GET", f"{route.path}/{STATIC_FILE}"))
        else:
            assert isinstance(route, Route), route
            method = "GET" if "GET" in (route.methods or {"GET"}) else sorted(route.methods)[0]
            paths.append((method, re.sub(r"\{[^}]+\}", EVENT_WITH_PICTURE, route.path)))
    return paths


def test_every_served_path_but_the_health_check_asks_for_the_login(served_store) -> None:
    dashboard = with_events(
        served_store(web={"port": 0, "username": "admin", "password_hash": PASSWORD_HASH})
    )
    paths = served_paths(dashboard)
    served = {path for _, path in paths}
    assert {"/api/camera_events", f"/snapshots/{EVENT_WITH_PICTURE}_thumb.jpg"} <= served
    for method, path in paths:
        anonymous = dashboard.client.request(method, path)
        if path in OPEN_PATHS:
            assert anonymous.status_code in (200, 503), path
            continue
        assert anonymous.status_code == 401, (method, path)
        allowed = dashboard.client.request(method, path, headers=basic_auth("admin", PASSWORD))
        if method == "GET" and not path.startswith("/clips/"):
            assert allowed.is_success, path
        else:  # an empty POST, or a clip these events do not keep: let in, then refused
            assert allowed.status_code in (400, 403, 404, 415, 422), (method, path)


def test_a_tampered_key_never_reaches_the_bucket(aws: Moto) -> None:
    """S3 takes `..` literally, but the store must not send such a key at all: a row changed
    to name another site's object would read it, or delete it, where a store resolves paths."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="pictures", CreateBucketConfiguration={"LocationConstraint": REGION})
    storage = open_storage(StorageSettings(url="s3://pictures/site-a", region=REGION), Path())
    tampered = "snapshots/../../site-b/snapshots/1.jpg"
    # The object the tampered key names, literally, so that a key sent as it is would find it.
    s3.put_object(Bucket="pictures", Key=f"site-a/{tampered}", Body=b"another site's picture")
    for attempt in (storage.read, lambda key: storage.write(key, b"x")):
        with pytest.raises(FileNotFoundError):
            attempt(tampered)
    with contextlib.suppress(FileNotFoundError):
        storage.delete([tampered])
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="pictures")["Contents"]]
    body = s3.get_object(Bucket="pictures", Key=f"site-a/{tampered}")["Body"].read()
    assert keys == [f"site-a/{tampered}"] and body == b"another site's picture"


def test_a_frame_shorter_than_the_header_is_read_as_text(caplog) -> None:
    """A firmware may send 0xFF and a few bytes, or JSON right after a stray 0xFF: neither is a
    header to unpack."""
    caplog.set_level(logging.DEBUG)
    now = datetime.now().astimezone()
    short = alarm_frame(HUMAN)[: HEADER.size - 1]
    assert list(parse_alarms(short, "192.0.2.7", now)) == []
    (event,) = parse_alarms(b'\xff{"Event":"Loss"}', "192.0.2.7", now)
    assert event.event == "Loss"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_alert_sent_again_a_second_later_keeps_its_message_id(smtp_sink: SmtpSink) -> None:
    """A copy sent after a crash goes out later: its Message-ID must not follow the clock."""
    config = smtp_config(smtp_sink.port)
    notifier = EmailNotifier(email_settings("smtp", smtp=config), SmtpTransport(config))
    alert = replace(make_alert(), event_id=7)
    assert notifier.send(alert).ok
    sent_in = int(time.time())
    # The next attempt, in a later second (a clock read to the second would now differ).
    wait_until(lambda: int(time.time()) > sent_in, 5, "the next second")
    assert notifier.send(alert).ok
    first, again = smtp_sink.messages
    assert first["Message-ID"] == again["Message-ID"]
