"""A camera that uploads every picture under one name (`snapshot.jpg`): each upload the server
acknowledged is analysed with its own bytes, even when the next one arrives while the first
is still queued."""

from __future__ import annotations

import io
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.aws import Moto, label
from harness.service import DATA, PASSWORDS, RunningService, upload, wait_until
from ipcam_analysis.ingest.ftp_files import SPOOL_FOLDER, in_flight_path, spool_copy
from ipcam_analysis.store import EventFilter

# Told apart by the cloud fake by their sizes, whatever the detector sends of them.
BLOCKER_JPEG = (DATA / "opencv_tree_f0000.jpg").read_bytes()
PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
HORSES_JPEG = (DATA / "darknet_horses.jpg").read_bytes()
LABEL_BY_WIDTH = {
    Image.open(io.BytesIO(picture)).width: name
    for picture, name in ((BLOCKER_JPEG, "Tree"), (PERSON_JPEG, "Person"), (HORSES_JPEG, "Horse"))
}
HOLD_SECONDS = 60  # a bound on the held worker, should the test fail before releasing it


def hold_first_picture(aws: Moto) -> threading.Event:
    """The cloud answers each picture with what it shows; it holds its answer for the blocker
    until the returned event is set, keeping the service's only worker busy."""
    release = threading.Event()

    def answer(image: bytes) -> list[dict[str, Any]]:
        name = LABEL_BY_WIDTH[Image.open(io.BytesIO(image)).width]
        if name == "Tree":
            release.wait(HOLD_SECONDS)
        return [label(name, 95.0)]

    aws.rekognition.answer = answer
    return release


def upload_with_curl(service: RunningService, data: bytes, name: str, tmp_path: Path) -> None:
    picture = tmp_path / "picture.jpg"
    picture.write_bytes(data)
    host, port = service.address
    url = f"ftp://cam01:{PASSWORDS['cam01']}@{host}:{port}/{name}"
    subprocess.run(["curl", "-sS", "-T", str(picture), url], check=True, timeout=60)


def analysed(service: RunningService) -> list[tuple[str, str, list[str]]]:
    events = reversed(service.service.store.events(EventFilter(limit=10)))
    return [
        (event["original_name"], event["outcome"], [lb["name"] for lb in event["labels"]])
        for event in events
    ]


@pytest.mark.parametrize("client", ["ftplib", "curl"])
@pytest.mark.parametrize("remove_files", [True, False], ids=["remove", "keep"])
def test_two_pictures_under_one_name_are_each_analysed(
    run_service, aws: Moto, tmp_path: Path, client: str, remove_files: bool
) -> None:
    release = hold_first_picture(aws)
    service = run_service(
        workers=1, email={"transport": "none"}, ftp_server={"remove_files": remove_files}
    )
    try:
        upload(service.address, "cam01", BLOCKER_JPEG, "blocker.jpg")
        wait_until(lambda: aws.rekognition.calls == 1, what="the worker to hold the blocker")
        for picture in (PERSON_JPEG, HORSES_JPEG):  # both queued behind the held worker
            if client == "curl":
                upload_with_curl(service, picture, "snapshot.jpg", tmp_path)
            else:
                upload(service.address, "cam01", picture, "snapshot.jpg")
        assert aws.rekognition.calls == 1  # neither was read before the second one arrived
    finally:
        release.set()
    service.wait_idle()

    assert analysed(service) == [
        ("blocker.jpg", "no_match", ["Tree"]),
        ("snapshot.jpg", "alert", ["Person"]),
        ("snapshot.jpg", "no_match", ["Horse"]),
    ]
    home = tmp_path / "ftp" / "cam01"
    if remove_files:
        wait_until(lambda: not any(home.iterdir()), what="the uploads to be removed")
    else:  # the user's files as the camera named them, the last one sent under its name
        kept = {path.relative_to(home).as_posix(): path.read_bytes() for path in home.iterdir()}
        assert kept == {"blocker.jpg": BLOCKER_JPEG, "snapshot.jpg": HORSES_JPEG}
        spool = tmp_path / "ftp" / SPOOL_FOLDER  # the queued copies, gone once analysed
        wait_until(lambda: not any(p.is_file() for p in spool.rglob("*")), what="the copies to go")


@pytest.mark.parametrize("remove_files", [True, False], ids=["remove", "keep"])
def test_a_received_file_never_queued_is_found_at_start_under_the_camera_name(
    run_service, aws: Moto, tmp_path: Path, remove_files: bool
) -> None:
    """A crash between writing the upload's own file and committing its queue row leaves the
    file alone: the next start queues it under the name the camera sent."""
    aws.rekognition.labels = [label("Person", 95.0)]
    home = tmp_path / "ftp" / "cam02"
    received = home / "2026-11-23" / "snapshot.jpg"
    received.parent.mkdir(parents=True)
    if remove_files:
        left = in_flight_path(received)
        left.parent.mkdir()
    else:  # the user's file, and the spool's link to it
        received.write_bytes(PERSON_JPEG)
        left = spool_copy(received, home)
    left.write_bytes(PERSON_JPEG)
    service = run_service(ftp_server={"remove_files": remove_files})
    service.wait_idle()

    assert service.outcomes() == [("2026-11-23/snapshot.jpg", "alert")]
    wait_until(lambda: not left.parent.exists(), what="the leftover removed")
    assert received.is_file() != remove_files  # the kept file stays
