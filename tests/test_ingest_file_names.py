"""What camera file names tell: Hikvision's and Dahua's event and capture time, Reolink's test."""

from __future__ import annotations

from datetime import datetime

import pytest

from ipcam_analysis.ingest.file_names import NamedEvent, file_name_note, is_ftp_test, named_event


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "192.168.1.64_01_20261206153012345_MOTION_DETECTION.jpg",
            NamedEvent("Motion detection", datetime(2026, 12, 6, 15, 30, 12, 345000), 1),
        ),
        (
            "porch/10.0.0.7_02_20261206235959001_LINE_CROSSING_DETECTION.jpg",
            NamedEvent("Line crossing detection", datetime(2026, 12, 6, 23, 59, 59, 1000), 2),
        ),
        (  # older firmware: no milliseconds
            "192.168.1.64_01_20261206153012_FIELD_DETECTION.jpeg",
            NamedEvent("Field detection", datetime(2026, 12, 6, 15, 30, 12), 1),
        ),
        (
            "IPC-HDW2431/2026-12-06/001/jpg/15/30/12[M][0@0][0].jpg",
            NamedEvent("Motion detection", datetime(2026, 12, 6, 15, 30, 12), 1),
        ),
        (
            "2026-12-06/002/jpg/08/05/59[A][0@0][3].jpg",
            NamedEvent("Alarm input", datetime(2026, 12, 6, 8, 5, 59), 2),
        ),
        (
            "nvr/2026-12-06/001/jpg/00/00/01[I][0@0][0].jpg",
            NamedEvent("Intelligent event", datetime(2026, 12, 6, 0, 0, 1), 1),
        ),
        (
            "nvr/2026-12-06/001/jpg/00/00/01[R][0@0][0].jpg",
            NamedEvent("Regular snapshot", datetime(2026, 12, 6, 0, 0, 1), 1),
        ),
    ],
)
def test_hikvision_and_dahua_names_give_the_event_and_the_time_taken(
    name: str, expected: NamedEvent
) -> None:
    assert named_event(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "snapshot.jpg",
        "2026-12-06/001/jpg/15/30/12.jpg",  # Dahua without the brackets
        "192.168.1.64_01_20261399153012345_MOTION_DETECTION.jpg",  # month 13
        "2026-12-06/001/jpg/25/30/12[M][0@0][0].jpg",  # hour 25
        "192.168.1.64_01_2026120615301_MOTION_DETECTION.jpg",  # a digit short
        "192.168.1.64_01_20261206153012345_MOTION_DETECTION.mp4",
        "192.168.1.64_01_20261206153012345_motion.jpg",
    ],
)
def test_other_names_give_nothing(name: str) -> None:
    assert named_event(name) is None
    assert file_name_note(name) == ""


def test_the_note_says_what_and_when_by_the_camera_s_clock() -> None:
    assert file_name_note("192.168.1.64_01_20261206153012345_MOTION_DETECTION.jpg") == (
        "Motion detection on channel 1, taken 2026-12-06 15:30:12.345 (camera's clock)"
    )
    assert file_name_note("cam/2026-12-06/001/jpg/15/30/12[M][0@0][0].jpg") == (
        "Motion detection on channel 1, taken 2026-12-06 15:30:12 (camera's clock)"
    )


def test_a_file_in_reolink_s_test_folder_is_the_camera_s_test() -> None:
    assert is_ftp_test("camera_test20261206153012/test.jpg")
    assert file_name_note("camera_test20261206153012/test.jpg").startswith("The camera's FTP test")
    assert not is_ftp_test("camera_test20261206153012")  # a file of that name, in the root
    assert not is_ftp_test("camera_tests/snapshot.jpg")
