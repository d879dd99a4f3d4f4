"""HTTP push uploads, driven by curl and httpx: the answers, the files kept, the log lines."""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.clips import EMPTY_STREET, encode_clip, held
from harness.ftp import camera_directory
from harness.intake import ScriptedAdmission, collecting_intake
from harness.service import DATA, wait_until
from ipcam_analysis.ingest.handoff import Refusal
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.throttle import MAX_SESSIONS_PER_IP, LoginThrottle
from ipcam_analysis.store.storage import remove_file_and_empty_folders
from ipcam_analysis.values import Upload

CAMERAS = {"cam01": "cam01-secret-pw", "cam02": "cam02-secret-pw"}


JPEG = (DATA / "darknet_person.jpg").read_bytes()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OUR_LOGGER = "ipcam_analysis.ingest.http"


@dataclass
class RunningHttp:
    ingest: HttpIngest
    root: Path
    admission_refusal: list[Refusal | None]
    fail_with: Exception | None = None
    uploads: list[Upload] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ingest.address[1]}/upload"

    def collect(self, uploads: Sequence[Upload]) -> list[int]:
        if self.fail_with is not None:
            raise self.fail_with
        self.uploads.extend(uploads)
        return list(range(len(self.uploads) - len(uploads) + 1, len(self.uploads) + 1))

    def kept_files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@pytest.fixture
def http_ingest(tmp_path: Path) -> Iterator[RunningHttp]:
    settings = HttpIngestConfig(enabled=True, host="127.0.0.1", max_upload_mb=1).model_copy(
        update={"port": 0}
    )
    refusal: list[Refusal | None] = [None]
    throttle = LoginThrottle(first_delay_seconds=0.05, max_delay_seconds=0.2)
    running = RunningHttp(None, tmp_path / "ftp", refusal)  # type: ignore[arg-type]
    intake = collecting_intake(running.collect, tmp_path / "data", ScriptedAdmission(refusal))
    cameras = camera_directory(tmp_path / "ftp")
    running.ingest = HttpIngest(settings, cameras, intake, login_throttle=throttle)
    running.ingest.start()
    yield running
    running.ingest.stop()


def curl(*args: str) -> tuple[int, str]:
    """(HTTP status, body) of a curl run."""
    result = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUR_LOGGER and r.levelno >= 30]


def test_curl_form_upload_is_kept_and_queued(http_ingest: RunningHttp, tmp_path: Path) -> None:
    picture = tmp_path / "front door.jpg"
    picture.write_bytes(JPEG)
    status, body = curl(
        "-u", f"cam01:{CAMERAS['cam01']}", "-F", f"file=@{picture}", http_ingest.url
    )

    assert status == 201
    assert httpx.Response(201, content=body).json() == {
        "id": 1,
        "camera": "cam01",
        "name": "front door.jpg",
    }
    [upload] = http_ingest.uploads
    assert (upload.camera, upload.source, upload.remote_ip) == ("cam01", "http", "127.0.0.1")
    assert upload.path.read_bytes() == JPEG
    assert upload.remove_when_done and upload.home == http_ingest.root / "cam01"
    assert upload.path.parent.parent == http_ingest.root / "cam01" / "http"  # …/http/<day>/


def test_curl_data_binary_with_a_name(http_ingest: RunningHttp, tmp_path: Path) -> None:
    picture = tmp_path / "x.png"
    picture.write_bytes(PNG)
    status, _ = curl(
        "-u",
        f"cam02:{CAMERAS['cam02']}",
        "-H",
        "Content-Type: image/png",
        "--data-binary",
        f"@{picture}",
        f"{http_ingest.url}?name=../../garden.png",
    )

    assert status == 201
    [upload] = http_ingest.uploads
    assert (upload.camera, upload.original_name) == ("cam02", "garden.png")
    assert upload.path.read_bytes() == PNG


@pytest.mark.parametrize(("kind", "suffix"), [("hxvs", ".264"), ("dav", ".dav")])
def test_a_clip_in_its_cameras_own_format_as_octet_stream(
    http_ingest: RunningHttp, tmp_path: Path, kind: str, suffix: str
) -> None:
    clip = tmp_path / f"alarm{suffix}"
    clip.write_bytes(encode_clip(held(EMPTY_STREET, 2), kind))
    status, _ = curl(
        *("-u", f"cam01:{CAMERAS['cam01']}", "-H", "Content-Type: application/octet-stream"),
        *("--data-binary", f"@{clip}", f"{http_ingest.url}?name={clip.name}"),
    )

    assert status == 201
    [upload] = http_ingest.uploads
    assert upload.path.suffix == suffix and upload.path.read_bytes() == clip.read_bytes()


def test_httpx_raw_and_multipart(http_ingest: RunningHttp) -> None:
    auth = ("cam01", CAMERAS["cam01"])
    raw = httpx.post(
        http_ingest.url, content=JPEG, headers={"Content-Type": "image/jpeg"}, auth=auth
    )
    form = httpx.post(
        http_ingest.url, files={"file": ("yard.jpg", JPEG, "application/octet-stream")}, auth=auth
    )

    assert (raw.status_code, form.status_code) == (201, 201)
    assert [raw.json()["id"], form.json()["id"]] == [1, 2]
    assert [u.original_name for u in http_ingest.uploads] == ["snapshot.jpg", "yard.jpg"]


@pytest.mark.parametrize(
    "auth",
    [("cam01", "wrong"), ("nobody", "cam01-secret-pw"), ("admin", "dashboard-password"), None],
    ids=["wrong-password", "unknown-camera", "dashboard-login", "none"],
)
def test_bad_credentials_are_refused_401_and_logged(
    http_ingest: RunningHttp, caplog: pytest.LogCaptureFixture, auth: Any
) -> None:
    caplog.set_level(logging.INFO)
    answer = httpx.post(
        http_ingest.url, content=JPEG, headers={"Content-Type": "image/jpeg"}, auth=auth
    )

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    name = auth[0] if auth else ""
    [line] = warnings(caplog)
    assert line == f"Failed HTTP upload login as {name!r} from 127.0.0.1 (1 in a row)"
    assert "wrong" not in caplog.text and "dashboard-password" not in caplog.text
    assert http_ingest.uploads == [] and http_ingest.kept_files() == []


def test_failed_logins_are_answered_later_and_later(tmp_path: Path) -> None:
    throttle = LoginThrottle(first_delay_seconds=0.05, max_delay_seconds=0.2)
    ingest = HttpIngest(
        HttpIngestConfig(host="127.0.0.1").model_copy(update={"port": 0}),
        camera_directory(tmp_path),
        collecting_intake(lambda uploads: [1], tmp_path / "data"),
        login_throttle=throttle,
    )
    ingest.start()
    try:
        url = f"http://127.0.0.1:{ingest.address[1]}/upload"
        for _ in range(3):
            assert httpx.post(url, content=JPEG, auth=("cam01", "guess")).status_code == 401
        # The shared throttle now holds three failures for the address, as FTP would see them.
        assert throttle.failures("127.0.0.1") == 3
        good = httpx.post(
            url,
            content=JPEG,
            headers={"Content-Type": "image/jpeg"},
            auth=("cam01", "cam01-secret-pw"),
        )
        assert good.status_code == 201 and throttle.failures("127.0.0.1") == 0
    finally:
        ingest.stop()


@pytest.mark.parametrize(
    ("headers", "content", "status", "reason"),
    [
        ({"Content-Type": "text/plain"}, b"hello", 415, "Not an image or clip type: text/plain"),
        ({}, JPEG, 415, "Not an image or clip type: none"),
        ({"Content-Type": "image/jpeg"}, b"\xff" * (1024 * 1024 + 1), 413, "Larger than"),
        ({"Content-Type": "image/jpeg"}, b"", 400, "Empty body"),
    ],
    ids=["text", "no-type", "oversize", "empty"],
)
def test_refusals_name_camera_and_address(
    http_ingest: RunningHttp,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    content: bytes,
    status: int,
    reason: str,
) -> None:
    answer = httpx.post(
        http_ingest.url, content=content, headers=headers, auth=("cam01", CAMERAS["cam01"])
    )

    assert answer.status_code == status and answer.text.startswith(reason)
    [line] = warnings(caplog)
    assert line.startswith(f"HTTP upload from cam01 (127.0.0.1) refused: {reason}")
    assert http_ingest.uploads == [] and http_ingest.kept_files() == []


def test_a_form_without_an_image_is_415_and_a_chunked_oversize_is_413(
    http_ingest: RunningHttp,
) -> None:
    auth = ("cam01", CAMERAS["cam01"])
    text = httpx.post(http_ingest.url, files={"file": ("a.jpg", b"not a picture")}, auth=auth)
    no_file = httpx.post(http_ingest.url, files={"other": ("a.jpg", JPEG)}, auth=auth)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(40):
            yield b"\xff" * 65536

    chunked = httpx.post(
        http_ingest.url, content=chunks(), headers={"Content-Type": "image/jpeg"}, auth=auth
    )

    assert (text.status_code, no_file.status_code, chunked.status_code) == (415, 400, 413)
    assert http_ingest.uploads == [] and http_ingest.kept_files() == []


def test_a_body_cut_off_mid_transfer_keeps_nothing(
    http_ingest: RunningHttp, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = base64.b64encode(f"cam01:{CAMERAS['cam01']}".encode()).decode()
    head = (
        "POST /upload HTTP/1.1\r\nHost: camera\r\nContent-Type: image/jpeg\r\n"
        f"Authorization: Basic {credentials}\r\nContent-Length: {len(JPEG)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", http_ingest.ingest.address[1])) as sock:
        sock.sendall(head.encode() + JPEG[:1000])

    wait_until(lambda: warnings(caplog), what="the log line")
    assert warnings(caplog) == [
        "HTTP upload from cam01 (127.0.0.1) refused: Cut off after 1000 bytes; nothing kept"
    ]
    assert http_ingest.uploads == [] and http_ingest.kept_files() == []


def test_back_pressure_is_503_with_retry_after(http_ingest: RunningHttp) -> None:
    http_ingest.admission_refusal[0] = Refusal.QUEUE_FULL
    auth = ("cam01", CAMERAS["cam01"])
    headers = {"Content-Type": "image/jpeg"}
    refused = httpx.post(http_ingest.url, content=JPEG, headers=headers, auth=auth)
    http_ingest.admission_refusal[0] = None
    taken = httpx.post(http_ingest.url, content=JPEG, headers=headers, auth=auth)

    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert refused.text == "Too many uploads waiting for analysis; try again later.\n"
    assert taken.status_code == 201
    assert len(http_ingest.uploads) == 1


def test_a_queue_that_cannot_take_it_is_503_and_nothing_is_kept(
    http_ingest: RunningHttp, caplog: pytest.LogCaptureFixture
) -> None:
    http_ingest.fail_with = RuntimeError("database is locked")
    answer = httpx.post(
        http_ingest.url,
        content=JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", CAMERAS["cam01"]),
    )

    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert http_ingest.kept_files() == []  # the client sends it again: no second copy
    assert any(
        r.levelno == logging.ERROR
        and r.getMessage().startswith("Could not queue the upload from cam01 (127.0.0.1)")
        for r in caplog.records
    )


def test_a_file_that_cannot_be_written_is_503(
    http_ingest: RunningHttp, caplog: pytest.LogCaptureFixture
) -> None:
    (http_ingest.root / "cam01").mkdir(parents=True)
    (http_ingest.root / "cam01" / "http").write_bytes(b"a file where the folder should be")
    answer = httpx.post(
        http_ingest.url,
        content=JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", CAMERAS["cam01"]),
    )

    assert answer.status_code == 503 and answer.text.startswith("The upload could not be written")
    assert warnings(caplog) == [
        "HTTP upload from cam01 (127.0.0.1) refused: The upload could not be written: Not a directory"
    ]
    assert http_ingest.uploads == []


def test_a_flood_of_connections_is_refused_then_served_again(http_ingest: RunningHttp) -> None:
    port = http_ingest.ingest.address[1]
    auth = ("cam01", CAMERAS["cam01"])
    headers = {"Content-Type": "image/jpeg"}
    with ExitStack() as flood:
        for _ in range(MAX_SESSIONS_PER_IP + 10):
            flood.enter_context(socket.create_connection(("127.0.0.1", port)))
        during = httpx.post(http_ingest.url, content=JPEG, headers=headers, auth=auth)
    # The address's share of the connections is taken: its next one is refused at once.
    assert during.status_code == 503 and during.headers["Retry-After"] == "30"
    assert during.text == "Too many connections from your address; try again later\n"

    def served() -> bool:
        answer = httpx.post(http_ingest.url, content=JPEG, headers=headers, auth=auth)
        return answer.status_code == 201

    wait_until(served, what="the HTTP listener to serve again")
    assert len(http_ingest.uploads) == 1


def test_only_post_upload_is_served(http_ingest: RunningHttp) -> None:
    auth = ("cam01", CAMERAS["cam01"])
    base = http_ingest.url.removesuffix("/upload")
    assert httpx.get(http_ingest.url, auth=auth).status_code == 405
    assert httpx.get(f"{base}/api/events", auth=auth).status_code == 404


def test_concurrent_uploads_get_distinct_ids_and_files(http_ingest: RunningHttp) -> None:
    auth = ("cam02", CAMERAS["cam02"])
    answers: list[int] = []
    lock = threading.Lock()

    def post(_: int) -> None:
        answer = httpx.post(
            f"{http_ingest.url}?name=same.jpg",
            content=JPEG,
            headers={"Content-Type": "image/jpeg"},
            auth=auth,
        )
        with lock:
            answers.append(answer.status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert answers == [201] * 8
    assert len({u.path for u in http_ingest.uploads}) == 8
    assert len(http_ingest.kept_files()) == 8


def test_a_raw_body_that_is_no_image_is_415_whatever_its_type_says(
    http_ingest: RunningHttp, tmp_path: Path
) -> None:
    fake = tmp_path / "not-a-picture.jpg"
    fake.write_bytes(b"<html>camera test page</html>")
    for kind in ("image/jpeg", "image/png"):
        status, body = curl(
            *("-u", f"cam01:{CAMERAS['cam01']}", "-H", f"Content-Type: {kind}"),
            *("--data-binary", f"@{fake}", http_ingest.url),
        )
        assert (status, body) == (415, "The body holds no JPEG or PNG image nor clip\n")
    assert http_ingest.uploads == [] and http_ingest.kept_files() == []


# Removes every empty day folder of cam01's HTTP uploads, every millisecond, as the clean-up
# after an analysed upload does (remove_file_and_empty_folders), only more often.
CLEANER = """
import os, sys, time
while True:
    for folder in os.listdir(sys.argv[1]) if os.path.isdir(sys.argv[1]) else ():
        try:
            os.rmdir(os.path.join(sys.argv[1], folder))
        except OSError:
            pass
    time.sleep(0.001)
"""


def test_uploads_survive_the_clean_up_removing_their_day_folder(http_ingest: RunningHttp) -> None:
    home = http_ingest.root / "cam01"
    statuses = []
    with (
        subprocess.Popen([sys.executable, "-c", CLEANER, str(home / "http")]) as cleaner,
        httpx.Client(auth=("cam01", CAMERAS["cam01"]), timeout=30) as client,
    ):
        try:
            for _ in range(300):
                response = client.post(
                    http_ingest.url, content=JPEG, headers={"Content-Type": "image/jpeg"}
                )
                statuses.append(response.status_code)
                if response.status_code == 201:  # analysed at once: its folder is empty again
                    remove_file_and_empty_folders(http_ingest.uploads[-1].path, home)
        finally:
            cleaner.kill()
    assert Counter(statuses) == {201: 300}
