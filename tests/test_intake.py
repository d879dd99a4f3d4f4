"""The intake (service/intake.py), without a database: where what a source hands over is kept
before its queue rows, and that uploads received together are queued all or none, leaving no
copy anywhere when they are not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from harness.intake import collecting_intake
from ipcam_analysis.ingest.handoff import NotAccepted, Received, Refusal
from ipcam_analysis.values import Upload

PICTURE = b"\xff\xd8\xff a picture"


class SharedStorage:
    """Shared storage (an S3 bucket) as a dict; `fail_writes` makes it unreachable."""

    shared = True

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_writes = False

    def write(self, key: str, data: bytes) -> None:
        if self.fail_writes:
            raise OSError("the bucket cannot be reached")
        self.objects[key] = data

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


def upload(home: Path, name: str) -> Upload:
    return Upload(
        "cam01",
        home / "http" / name,
        datetime.now().astimezone(),
        remote_ip="192.0.2.7",
        original_name=name,
        source="http",
        remove_when_done=True,
        home=home,
    )


def refuse(uploads: Sequence[Upload]) -> list[int]:
    raise RuntimeError("database is locked")


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_bytes_are_a_file_on_disk_before_their_row_with_local_storage(tmp_path: Path) -> None:
    home = tmp_path / "ftp" / "cam01"
    on_disk_at_commit: list[bytes] = []

    def put_many(uploads: Sequence[Upload]) -> list[int]:
        on_disk_at_commit.extend(queued.path.read_bytes() for queued in uploads)
        return [7]

    intake = collecting_intake(put_many, tmp_path / "data")
    assert intake.accept([Received(upload(home, "a.jpg"), PICTURE)]) == [7]
    assert on_disk_at_commit == [PICTURE]
    assert (home / "http" / "a.jpg").read_bytes() == PICTURE  # the row names it


def test_bytes_go_to_shared_storage_as_they_are_and_no_file_is_made(tmp_path: Path) -> None:
    # Not even a folder could be made here: the bytes never touch this machine's disk.
    (tmp_path / "ftp").write_bytes(b"")
    home = tmp_path / "ftp" / "cam01"
    storage = SharedStorage()
    queued: list[Upload] = []
    intake = collecting_intake(
        lambda uploads: queued.extend(uploads) or [1], tmp_path / "data", storage=storage
    )

    assert intake.accept([Received(upload(home, "a.jpg"), PICTURE)]) == [1]
    [row] = queued
    assert row.stored_key and storage.objects == {row.stored_key: PICTURE}
    assert row.stored_key.startswith("uploads/") and row.stored_key.endswith("/a.jpg")


@pytest.mark.parametrize("shared", [False, True], ids=["local", "shared"])
def test_a_batch_the_queue_refuses_leaves_no_copy_anywhere(tmp_path: Path, shared: bool) -> None:
    home = tmp_path / "ftp" / "cam01"
    received = home / "2026-11-23" / "ftp.jpg"  # a file a source wrote itself (FTP)
    received.parent.mkdir(parents=True)
    received.write_bytes(PICTURE)
    ftp_upload = Upload("cam01", received, datetime.now().astimezone(), home=home)
    storage = SharedStorage()
    intake = collecting_intake(refuse, tmp_path / "data", storage=storage if shared else None)

    batch = [
        Received(upload(home, "a.jpg"), PICTURE),
        ftp_upload,
        Received(upload(home, "b.jpg"), PICTURE),
    ]
    with pytest.raises(NotAccepted) as refused:
        intake.accept(batch)
    assert refused.value.refusal is Refusal.NOT_QUEUED
    assert files_under(tmp_path / "ftp") == [] and storage.objects == {}


def test_bytes_that_cannot_be_written_are_not_stored_and_leave_nothing(tmp_path: Path) -> None:
    home = tmp_path / "ftp" / "cam01"
    first = upload(home, "a.jpg")
    second = replace(upload(home, "b.jpg"), path=home / "full" / "day" / "b.jpg")
    (home / "full").parent.mkdir(parents=True)
    (home / "full").write_bytes(b"")  # a file where the folder should be: the write fails
    intake = collecting_intake(lambda uploads: [1, 2], tmp_path / "data")

    with pytest.raises(NotAccepted) as refused:
        intake.accept([Received(first, PICTURE), Received(second, PICTURE)])
    assert refused.value.refusal is Refusal.NOT_STORED
    assert refused.value.reason == "Not a directory"
    assert files_under(home) == [home / "full"]  # the first picture, written, is gone again


def test_an_unreachable_shared_storage_is_not_queued(tmp_path: Path) -> None:
    storage = SharedStorage()
    storage.fail_writes = True
    intake = collecting_intake(lambda uploads: [1], tmp_path / "data", storage=storage)
    with pytest.raises(NotAccepted) as refused:
        intake.accept([Received(upload(tmp_path / "ftp" / "cam01", "a.jpg"), PICTURE)])
    assert refused.value.refusal is Refusal.NOT_QUEUED
    assert files_under(tmp_path) == []
