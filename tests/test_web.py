"""The dashboard over real HTTP (uvicorn on a loopback port): pages, API, health, login, files."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from harness.aws import Moto, label
from harness.service import DATA, upload
from harness.web import (
    PERSON_BOX,
    Dashboard,
    basic_auth,
    card_texts,
    days_ago,
    event_record,
    page_text,
    person,
    raw_get,
    snapshot_of,
)
from ipcam_analysis.errors import ConfigError
from ipcam_analysis.imaging import encode_jpeg, pixel_rect
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.store import EventFilter
from ipcam_analysis.values import Label, NotifyOutcome, Snapshot, Upload
from ipcam_analysis.web import WebServer, WebServerError
from ipcam_analysis.web.app import SECURITY_HEADERS
from ipcam_analysis.web.auth import PasswordHash, hash_password

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)


def with_events(dashboard: Dashboard) -> Dashboard:
    """Three events: an old one from cam02, an alert with a picture, an error without one."""
    store = dashboard.store
    store.record(event_record(1, camera="cam02", received_at=days_ago(2), outcome="no_match"))
    store.record(
        event_record(
            2,
            labels=[person(), Label("Tree", 88.5)],
            triggered=["Person"],
            snapshot=snapshot_of(),
            notifications=[NotifyOutcome("email", True, "sent to owner@example.com")],
        )
    )
    store.record(event_record(3, outcome="error", reason="Rekognition: throttled", cloud_calls=0))
    return dashboard


def test_pages_render_with_security_headers(served_store) -> None:
    dashboard = with_events(served_store())
    for path in (
        "/",
        "/events/2",
        "/events/3",
        "/cameras",
        "/usage",
        "/config",
        "/static/style.css",
    ):
        response = dashboard.client.get(path)
        assert response.status_code == 200, path
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    events_page = dashboard.client.get("/").text
    assert 'src="/snapshots/2_thumb.jpg"' in events_page
    assert events_page.index("/events/3") < events_page.index("/events/2")  # newest first
    event_page = dashboard.client.get("/events/2").text
    assert "2026/2.jpg" in event_page and "sent to owner@example.com" in event_page
    assert event_page.count("<rect") == 1  # Person has a box; Tree is image-level
    assert 'x="25.00%"' in event_page and 'height="60.00%"' in event_page


def test_events_page_filters_and_pages(served_store) -> None:
    dashboard = served_store()
    for number in range(1, 61):
        dashboard.store.record(event_record(number, camera="cam01" if number % 2 else "cam02"))
    first = dashboard.client.get("/", params={"camera": "cam02", "label": "", "limit": "10"}).text
    assert "/events/60" in first and "/events/42" in first and "/events/59" not in first
    assert "/events/40" not in first
    # The link to the older page keeps the filters and leaves out the empty fields.
    assert 'href="?camera=cam02&amp;limit=10&amp;before_id=42"' in first
    page = dashboard.client.get("/", params={"camera": "cam02", "before_id": "12"}).text
    assert "/events/10" in page and "/events/12" not in page
    assert 'href="?camera=cam02">« Newest' in page
    assert dashboard.client.get("/", params={"outcome": "nonsense"}).status_code == 400
    assert dashboard.client.get("/", params={"since": "yesterday"}).status_code == 400
    assert "No events match" in dashboard.client.get("/", params={"label": "Unicorn"}).text


def test_api_returns_what_the_store_holds(served_store) -> None:
    dashboard = with_events(served_store())
    body = dashboard.client.get("/api/events").json()
    stored = dashboard.store.events(EventFilter())
    assert [e["id"] for e in body["events"]] == [e["id"] for e in stored] == [3, 2, 1]
    for served, held in zip(body["events"], stored, strict=True):
        assert {k: served[k] for k in held} == held
    assert body["next_before_id"] is None
    alert = dashboard.client.get("/api/events/2").json()
    assert alert["snapshot_url"] == "/snapshots/2.jpg" and alert["url"] == "/events/2"
    assert alert["labels"][0]["instances"][0]["box"]["left"] == 0.25
    picture = dashboard.client.get(alert["snapshot_url"])
    assert picture.headers["content-type"] == "image/jpeg"
    assert picture.content == (DATA / "darknet_person.jpg").read_bytes()
    assert dashboard.client.get(alert["thumbnail_url"]).content[:2] == b"\xff\xd8"
    assert dashboard.client.get("/api/events/3").json()["snapshot_url"] is None
    missing = dashboard.client.get("/api/events/99")
    assert missing.status_code == 404 and missing.json() == {"error": "no such event"}
    assert dashboard.client.get("/api/nothing").json() == {"error": "Not Found"}


def test_api_filters_and_paging(served_store) -> None:
    dashboard = with_events(served_store())
    get = dashboard.client.get
    assert [e["id"] for e in get("/api/events", params={"camera": "cam02"}).json()["events"]] == [1]
    assert [e["id"] for e in get("/api/events", params={"label": "person"}).json()["events"]] == [2]
    assert [e["id"] for e in get("/api/events", params={"outcome": "error"}).json()["events"]] == [
        3
    ]
    today = days_ago(0).strftime("%Y-%m-%d")
    assert [e["id"] for e in get("/api/events", params={"since": today}).json()["events"]] == [3, 2]
    two_days_ago = days_ago(2).strftime("%Y-%m-%d")
    assert [
        e["id"] for e in get("/api/events", params={"until": two_days_ago}).json()["events"]
    ] == [1]
    page = get("/api/events", params={"limit": 2}).json()
    assert [e["id"] for e in page["events"]] == [3, 2] and page["next_before_id"] == 2
    rest = get("/api/events", params={"limit": 2, "before_id": 2}).json()
    assert [e["id"] for e in rest["events"]] == [1] and rest["next_before_id"] is None
    for bad in ({"limit": "0"}, {"limit": "501"}, {"before_id": "x"}, {"until": "2026-13-01"}):
        response = get("/api/events", params=bad)
        assert response.status_code == 400 and response.json()["error"]


def test_cameras_and_usage(served_store) -> None:
    dashboard = with_events(
        served_store(started_at=time.time() - 7 * 86400, rekognition={"price_per_1000_images": 1.5})
    )
    cameras = {c["name"]: c for c in dashboard.client.get("/api/cameras").json()["cameras"]}
    assert cameras["cam01"]["uploads_today"] == 2 and cameras["cam01"]["alerts_today"] == 1
    assert cameras["cam01"]["last_error"] == "Rekognition: throttled"
    assert not cameras["cam01"]["silent"] and cameras["cam02"]["silent"]  # two days quiet
    page = dashboard.client.get("/cameras").text
    assert "Silent for 2 days" in page and "Last seen" in page
    usage = dashboard.client.get("/api/usage").json()
    assert len(usage["days"]) == 30
    assert usage["total"] == {"uploads": 3, "alerts": 1, "cloud_calls": 2, "cost": 0.003}
    assert {c["camera"]: c["cloud_calls"] for c in usage["cameras"]} == {"cam01": 1, "cam02": 1}
    assert usage["days"][-1]["day"] == days_ago(0).strftime("%Y-%m-%d")
    assert "<svg" in dashboard.client.get("/usage").text


def test_no_camera_is_silent_until_the_service_has_listened_long_enough(served_store) -> None:
    # Started an hour ago: cam02's two quiet days were (partly) nobody listening.
    dashboard = with_events(served_store(started_at=time.time() - 3600))
    cameras = {c["name"]: c for c in dashboard.client.get("/api/cameras").json()["cameras"]}
    assert not cameras["cam01"]["silent"] and not cameras["cam02"]["silent"]
    page = dashboard.client.get("/cameras").text
    assert "Silent for" not in page and "Last seen 2 days ago" in page
    # A camera configured but never heard from is not red either, right after a start.
    fresh = served_store(ftp_server={"users": {"cam01": "pw", "porch": "pw"}})
    cameras = fresh.client.get("/api/cameras").json()["cameras"]
    assert {camera["name"]: camera["silent"] for camera in cameras}["porch"] is False
    assert not any(camera["silent"] for camera in cameras)
    assert 'class="card silent"' not in fresh.client.get("/cameras").text


def test_healthz_reports_ftp_queue_and_detector(served_store, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = listener.getsockname()
        dashboard = served_store(ftp_address=lambda: address)
        dashboard.queue.put(Upload("cam01", tmp_path / "x.jpg", days_ago(1 / 24)))
        up = dashboard.client.get("/healthz")
        assert up.status_code == 200
        report = up.json()
        assert report["status"] == "ok"
        assert report["ftp"] == {"up": True, "address": f"127.0.0.1:{address[1]}"}
        assert report["listeners"] == {"ftp": report["ftp"]}
        assert report["queue"]["depth"] == 1
        assert 3590 < report["queue"]["oldest_pending_age_seconds"] < 3700
        assert report["detector"]["last_success"] is None
    down = dashboard.client.get("/healthz")  # the listener is closed now
    assert down.status_code == 503 and down.json()["ftp"]["up"] is False
    metrics = dashboard.client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "ipcam_queue_depth 1.0" in metrics.text


def test_login_is_required_everywhere_but_healthz(served_store) -> None:
    # Each failure is answered later than the one before: quickly here (3 s to 30 s by default).
    throttle = LoginThrottle(first_delay_seconds=0.001, max_delay_seconds=0.01)
    dashboard = with_events(
        served_store(
            web={"port": 0, "username": "admin", "password_hash": PASSWORD_HASH},
            login_throttle=throttle,
        )
    )
    client = dashboard.client
    paths = ("/", "/events/2", "/cameras", "/usage", "/config", "/api/events", "/api/events/2")
    paths += ("/api/cameras", "/api/usage", "/metrics", "/snapshots/2.jpg", "/static/style.css")
    wrong = [
        {},
        basic_auth("admin", "wrong"),
        basic_auth("Admin", PASSWORD),
        basic_auth("", ""),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Bearer {PASSWORD}"},
    ]
    for path in paths:
        for headers in wrong:
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
            assert response.headers["X-Frame-Options"] == "DENY"
        assert client.get(path, headers=basic_auth("admin", PASSWORD)).status_code == 200, path
    assert client.get("/healthz").status_code in (200, 503)


def test_secrets_are_never_rendered(served_store) -> None:
    dashboard = served_store(web={"port": 0, "username": "admin", "password_hash": PASSWORD_HASH})
    page = dashboard.client.get("/config", headers=basic_auth("admin", PASSWORD)).text
    assert "pw-cam01" not in page and PASSWORD_HASH not in page and PASSWORD not in page
    assert PASSWORD_HASH.split("$")[-1] not in page
    assert "****" in page


@pytest.mark.parametrize(
    "path",
    [
        "/snapshots/../../etc/passwd",
        "/snapshots/%2e%2e/%2e%2e/etc/passwd",
        "/snapshots/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/snapshots/..%2f..%2f..%2fetc%2fpasswd",
        "/snapshots//etc/passwd",
        "/snapshots/%2Fetc%2Fpasswd",
        "/snapshots/2.jpg/../../../../etc/passwd",
        "/snapshots/2/../../../etc/passwd.jpg",
        "/snapshots/-1.jpg",
        "/snapshots/2e0.jpg",
        "/snapshots/..%5c..%5cetc%5cpasswd",
        "/static/../../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/../../../../etc/passwd",
    ],
)
def test_paths_outside_the_stores_are_refused(served_store, path: str) -> None:
    dashboard = with_events(served_store())
    status, body = raw_get(dashboard.address, path)
    assert status in (400, 404)
    assert b"root:" not in body


def test_password_hashes(tmp_path: Path) -> None:
    encoded = hash_password("s3cret")
    assert encoded.startswith("scrypt$32768$8$1$")
    parsed = PasswordHash.parse(encoded)
    assert parsed.matches("s3cret") and not parsed.matches("s3cret ")
    assert hash_password("s3cret") != encoded  # a fresh salt each time
    for bad in ("s3cret", "scrypt$1000$8$1$AA==$AA==", "bcrypt$2b$12$abc", "scrypt$x$8$1$a$b"):
        with pytest.raises(ConfigError, match=r"web\.password_hash"):
            PasswordHash.parse(bad)
    result = subprocess.run(
        [sys.executable, "-m", "ipcam_analysis.cli", "hash-password"],
        input="s3cret\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no config.yaml here, and nothing may be created
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert PasswordHash.parse(result.stdout.strip()).matches("s3cret")
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = WebServer(lambda scope, receive, send: None, "127.0.0.1", port)
        with pytest.raises(WebServerError, match=f"127.0.0.1:{port}.*web.port"):
            server.start()


def test_stop_is_prompt_with_a_browser_connection_open(served_store) -> None:
    dashboard = served_store()
    assert dashboard.client.get("/").status_code == 200  # keeps the connection alive
    stopper = threading.Thread(target=dashboard.server.stop)
    stopper.start()
    stopper.join(30)  # a bound, not a speed: without it a keep-alive connection holds stop()
    assert not stopper.is_alive()
    with pytest.raises(httpx.TransportError):
        dashboard.client.get("/")


def test_the_running_service_serves_its_dashboard(run_service, aws: Moto, capsys) -> None:
    aws.rekognition.labels = [label("Person", 97, boxes=((0.3, 0.2, 0.2, 0.6),))]
    service = run_service()
    url = service.service.web.url
    assert f"Dashboard: {url}" in capsys.readouterr().out
    upload(service.address, "cam01", (DATA / "darknet_person.jpg").read_bytes(), "a/b.jpg")
    service.wait_idle()
    with httpx.Client(base_url=url, timeout=30) as client:
        (event,) = client.get("/api/events").json()["events"]
        assert event == {**event, "camera": "cam01", "outcome": "alert", "original_name": "a/b.jpg"}
        assert client.get(event["thumbnail_url"]).status_code == 200
        health = client.get("/healthz").json()
        assert health["ftp"]["up"] and health["queue"]["depth"] == 0
        assert health["detector"]["last_success"] is not None
        node = service.service.config.node_name
        assert health["node"] == node and health["roles"] == ["ingest", "worker", "web"]
        metric = f'ipcam_cloud_calls_total{{camera="cam01",node="{node}"}} 1.0'
        assert metric in client.get("/metrics").text


def test_a_node_without_the_web_role_serves_only_its_health_and_metrics(run_service) -> None:
    service = run_service(roles=("ingest",))
    upload(service.address, "cam01", (DATA / "darknet_person.jpg").read_bytes(), "queued.jpg")
    url = service.service.web.url
    with httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/healthz").json()
        assert health["roles"] == ["ingest"] and health["ftp"]["up"]
        assert health["queue"]["depth"] == 1  # queued here, for the worker nodes
        assert 'ipcam_uploads_total{camera="cam01",node=' in client.get("/metrics").text
        assert client.get("/api/events").status_code == 404
        assert client.get("/").status_code == 404


def test_every_card_says_what_was_seen_and_why(run_service, aws: Moto, tmp_path: Path) -> None:
    """A newcomer sees why an upload alerted or not (a cooldown, labels not watched) and what
    failed, on the events list, the event page and the cameras page."""
    person_and_tree = [label("Person", 97, boxes=((0.3, 0.2, 0.2, 0.6),)), label("Tree", 90.4)]
    scenes = {"darknet_person.jpg": person_and_tree, "darknet_horses.jpg": person_and_tree}
    scenes["opencv_tree_f0000.jpg"] = [label("Tree", 92)]
    pictures = {name: (DATA / name).read_bytes() for name in [*scenes, "darknet_dog.jpg"]}
    by_bytes = {pictures[name]: labels for name, labels in scenes.items()}
    aws.rekognition.answer = lambda image: by_bytes.get(image, [])
    service = run_service(filters={"cooldown_seconds": 600})
    for name in scenes:  # an alert, the same person again (cooldown), only a tree
        upload(service.address, "cam01", pictures[name], name)
        service.wait_idle()
    aws.rekognition.error = (400, "InvalidImageFormatException", "Request has invalid image format")
    upload(service.address, "cam01", pictures["darknet_dog.jpg"], "darknet_dog.jpg")
    # An upload that cannot be read (a folder where its file should be), too old to retry.
    folder = tmp_path / "ftp" / "cam02" / "unreadable.jpg"
    folder.mkdir(parents=True)
    service.service.queue.put(Upload("cam02", folder, days_ago(2), "192.0.2.9", "unreadable.jpg"))
    service.wait_idle()
    with httpx.Client(base_url=service.service.web.url, timeout=30) as client:
        events = {e["original_name"]: e for e in client.get("/api/events").json()["events"]}
        cards = dict(zip(events, card_texts(client.get("/").text), strict=True))
        unreadable = page_text(client.get(f"/events/{events['unreadable.jpg']['id']}").text)
        suppressed = page_text(client.get(f"/events/{events['darknet_horses.jpg']['id']}").text)
        cameras = card_texts(client.get("/cameras").text)
    assert cards["darknet_person.jpg"].endswith(
        "Alert Seen: Person 97%, Tree 90% Alerted on Person"
    )
    cooldown = r"Seen: Person 97%, Tree 90% Person alerted \d+ s ago \(cooldown\)"
    assert re.search(f"Alert suppressed {cooldown}$", cards["darknet_horses.jpg"])
    assert re.search(f"Received [-0-9]+ [:0-9]+ {cooldown}", suppressed)  # atop its page
    assert cards["opencv_tree_f0000.jpg"].endswith(
        "Nothing of interest Seen: Tree 92% Not in labels: Tree"
    )
    failed = "Failed: Rekognition: InvalidImageFormatException: Request has invalid image format"
    assert cards["darknet_dog.jpg"].endswith(f"Error {failed}")
    cannot_read = f"Failed: cannot read the upload ([Errno 21] Is a directory: '{folder}')"
    assert cards["unreadable.jpg"].endswith(f"Error {cannot_read}")
    # Its page says what failed, and that the picture was never read: not that retention took it.
    assert cannot_read in unreadable and "retention" not in unreadable
    assert "No picture is kept for this event: processing failed before it was read." in unreadable
    # Each camera's latest picture says what it showed and what became of it.
    assert f"Latest picture: Error {failed}" in cameras[0]


def yellow_share(image: Image.Image, rect: tuple[int, int, int, int]) -> float:
    """How much of a rectangle's outline (one pixel in) is the boxes' yellow."""
    left, top, right, bottom = (rect[0] + 1, rect[1] + 1, rect[2] - 1, rect[3] - 1)
    points = [(x, y) for x in range(left, right + 1) for y in (top, bottom)]
    points += [(x, y) for y in range(top, bottom + 1) for x in (left, right)]
    rgb = [image.getpixel(point) for point in points]
    return sum(r > 180 and g > 150 and b < 110 for r, g, b in rgb) / len(points)


def test_a_thumbnail_is_drawn_from_the_kept_picture_when_a_page_first_shows_it(
    served_store,
) -> None:
    dashboard = with_events(served_store())
    dashboard.store.record(
        event_record(
            4,
            outcome="no_match",
            labels=[person()],
            snapshot=snapshot_of(),
        )
    )
    assert dashboard.store.snapshot(2, thumbnail=True) is None  # nothing drawn at record time

    served = dashboard.client.get("/snapshots/2_thumb.jpg")
    quiet = dashboard.client.get("/snapshots/4_thumb.jpg")

    assert served.status_code == quiet.status_code == 200
    assert served.headers["cache-control"] == "private, max-age=86400"
    small = Image.open(io.BytesIO(served.content))
    assert small.format == "JPEG" and small.size == (320, 212)  # the 640×424 picture halved
    person_box = pixel_rect(PERSON_BOX, small.size)
    assert yellow_share(small, person_box) > 0.8  # the label that alerted is boxed
    # A person seen but not alerted on is not boxed.
    assert yellow_share(Image.open(io.BytesIO(quiet.content)), person_box) < 0.2
    assert dashboard.store.snapshot(2, thumbnail=True) is None  # and it is kept nowhere
    assert dashboard.client.get("/snapshots/3_thumb.jpg").status_code == 404  # no picture


def test_a_thumbnail_an_older_version_kept_is_served_as_it_is(served_store, tmp_path: Path) -> None:
    dashboard = with_events(served_store())
    day = dashboard.store.event(2)["received_at"][:10]
    drawn = encode_jpeg(Image.new("RGB", (320, 212), (0, 90, 200)))
    folder = dashboard.store.storage.local_path(f"snapshots/{day}")
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2_thumb.jpg").write_bytes(drawn)
    with dashboard.store._db.transaction() as conn:
        conn.execute("UPDATE events SET thumbnail = $1 WHERE id = 2", (f"{day}/2_thumb.jpg",))

    assert dashboard.client.get("/snapshots/2_thumb.jpg").content == drawn


def test_a_large_pictures_thumbnail_is_decoded_small_and_still_boxed(served_store) -> None:
    dashboard = served_store()
    photo = snapshot_of().image.resize((1920, 1272))
    large = Snapshot(encode_jpeg(photo), "JPEG", photo)
    dashboard.store.record(event_record(5, labels=[person()], triggered=["Person"], snapshot=large))

    served = dashboard.client.get("/snapshots/5_thumb.jpg")

    small = Image.open(io.BytesIO(served.content))
    assert small.size == (480, 318)  # libjpeg's quarter scale: the smallest still 320 wide
    assert yellow_share(small, pixel_rect(PERSON_BOX, small.size)) > 0.8
