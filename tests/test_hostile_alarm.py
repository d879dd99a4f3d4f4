"""The XMeye alarm server under a stranger's hand (it has no login): floods of alarms, of
distinct alarms, of oversize and deep JSON, of idle connections from many addresses."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from typing import Any

import pytest

from harness.service import RunningService, upload, wait_until
from harness.web import snapshot_of
from ipcam_analysis.ingest import alarm
from ipcam_analysis.ingest.alarm import REPEAT_WINDOW_SECONDS
from ipcam_analysis.ingest.alarm_frames import (
    MAX_ALARMS_PER_CONNECTION,
    MAX_FRAME_BYTES,
    MAX_JSON_DEPTH,
)
from ipcam_analysis.ingest.throttle import MAX_SESSIONS, MAX_SESSIONS_PER_IP
from ipcam_analysis.store import EventFilter
from tests.test_ingest_alarm import HUMAN, SERIAL, Alarms, alarm_frame

FLOOD_ADDRESSES = [f"127.0.0.{host}" for host in range(10, 35)]  # 25
FRESH_CAMERA = "127.0.0.99"
MAX_NOTE = 500


def alarm_service(run_service) -> RunningService:
    return run_service(
        alarm_server={"enabled": True, "host": "127.0.0.1", "port": 0},
        cameras={"cam01": {"serial_id": SERIAL}},
    )


def send(service: RunningService, data: bytes) -> None:
    """One connection, as a camera makes it; returns once the server has read it all."""
    with socket.create_connection(service.service.sources["alarm"].address, timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""


def camera_events(service: RunningService) -> list[dict[str, Any]]:
    return service.service.store.camera_events.recent(limit=1000)


def test_identical_alarms_make_one_row_one_line_and_a_count(
    run_service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    service = alarm_service(run_service)
    alarm = json.dumps({"Event": "HumanDetect", "SerialID": SERIAL, "Status": "Start"}).encode()
    flood = alarm * (60_000 // len(alarm))  # one connection under 64 kB: a thousand alarms
    send(service, flood)
    repeats = MAX_ALARMS_PER_CONNECTION - 1  # each connection is read for a few at most
    wait_until(lambda: f"came {repeats} more times" in caplog.text, REPEAT_WINDOW_SECONDS + 30)
    (row,) = camera_events(service)
    assert (row["camera"], row["event"], row["status"]) == ("cam01", "HumanDetect", "Start")
    reported = [r for r in caplog.records if "reported HumanDetect" in r.getMessage()]
    assert len(reported) == 1
    assert (
        f"Alarm HumanDetect Start from 127.0.0.1 (serial {SERIAL}) came {repeats} more times"
        f" within {REPEAT_WINDOW_SECONDS:.0f} s: recorded once" in caplog.text
    )


def test_many_distinct_alarms_leave_the_next_upload_a_short_note(run_service) -> None:
    service = alarm_service(run_service)
    names = [f"Event{number:03d}-" + "x" * 190 for number in range(320)]
    for first in range(0, len(names), MAX_ALARMS_PER_CONNECTION):
        batch = names[first : first + MAX_ALARMS_PER_CONNECTION]
        send(service, b"".join(alarm_frame({**HUMAN, "Event": name}) for name in batch))
    wait_until(lambda: len(camera_events(service)) == len(names), 60, "every alarm recorded")
    upload(service.address, "cam01", snapshot_of().data, "after.jpg")
    service.wait_idle()
    (event,) = service.service.store.events(EventFilter())
    note = event["note"]
    assert note.startswith("camera reported Event") and note.endswith(" and 315 more")
    assert len(note) < MAX_NOTE
    # Five names, each cut short. Which five depends on the order the alarms were recorded in:
    # their handler threads may record a later connection's first alarm before an earlier one's.
    listed = note.removeprefix("camera reported ").removesuffix(" and 315 more").split(", ")
    assert len(set(listed)) == 5
    assert all(len(name) < 100 and any(n.startswith(name) for n in names) for name in listed)


@pytest.mark.parametrize(
    "oddity",
    [
        {"Descrip": "x" * MAX_FRAME_BYTES},
        {"Descrip": json.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))},
    ],
    ids=["oversize-frame", "deep-json"],
)
def test_an_alarm_too_big_or_too_deep_is_not_read(
    alarm_server: Alarms, oddity: dict[str, Any]
) -> None:
    alarm_server.send(alarm_frame({**HUMAN, **oddity}))
    alarm_server.send(('{"Event":' * 16_000).encode())  # 16,000 deep, each `{` a place to start
    alarm_server.send(alarm_frame({**HUMAN, "Status": "Stop"}))
    (event,) = alarm_server.wait_for(1)  # the oddity made none, and the server still serves
    assert event.status == "Stop"


def test_a_fresh_camera_gets_in_while_many_addresses_hold_every_connection(
    alarm_server: Alarms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flood's connections stay open for the whole test, not READ_SECONDS.
    monkeypatch.setattr(alarm, "READ_SECONDS", 600.0)
    flood: list[socket.socket] = []

    def closed_by_server() -> int:
        closed = 0
        for sock in flood:
            with suppress(BlockingIOError):
                closed += sock.recv(1, socket.MSG_PEEK) == b""
        return closed

    with ExitStack() as stack:
        for address in FLOOD_ADDRESSES:
            for _ in range(MAX_SESSIONS_PER_IP):
                sock = socket.create_connection(
                    alarm_server.ingest.address, timeout=30, source_address=(address, 0)
                )
                sock.setblocking(False)  # to tell, without waiting, whether it was closed
                flood.append(stack.enter_context(sock))
        # The server holds all it may, and has closed the rest of the flood.
        overflow = len(flood) - MAX_SESSIONS
        wait_until(lambda: closed_by_server() == overflow, 60, "the flood to fill the server")
        with socket.create_connection(
            alarm_server.ingest.address, timeout=30, source_address=(FRESH_CAMERA, 0)
        ) as camera:
            camera.sendall(alarm_frame(HUMAN))
        (event,) = alarm_server.wait_for(1)
        assert (event.camera, event.remote_ip) == ("cam01", FRESH_CAMERA)


@pytest.fixture
def alarm_server() -> Iterator[Alarms]:
    """An alarm server alone, cam01's serial known."""
    server = Alarms({SERIAL: "cam01"})
    server.ingest.start()
    try:
        yield server
    finally:
        server.ingest.stop()
