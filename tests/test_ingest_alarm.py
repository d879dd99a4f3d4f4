"""The XMeye alarm center, driven by a real socket client sending the cameras' frames."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.service import wait_until
from ipcam_analysis.ingest.alarm import MAX_MESSAGE_BYTES, AlarmIngest, AlarmServerConfig
from ipcam_analysis.ingest.alarm_frames import camera_address, parse_alarms
from ipcam_analysis.ingest.context import CameraDirectory, EventSourceContext
from ipcam_analysis.ingest.throttle import MAX_SESSIONS_PER_IP
from ipcam_analysis.values import CameraEvent

SERIAL = "a7c81f0e5d6b4c3a"
HUMAN = {
    "Address": "0xCCB2A8C0",
    "Channel": 0,
    "Descrip": "",
    "Event": "HumanDetect",
    "SerialID": SERIAL,
    "StartTime": "2022-09-25 06:27:33",
    "Status": "Start",
    "Type": "Alarm",
}
OUR_LOGGER = "ipcam_analysis.ingest.alarm"


def alarm_frame(body: dict[str, Any], message_id: int = 1508) -> bytes:
    """As the cameras send it: the 20-byte header, the JSON, a newline and a NUL."""
    data = json.dumps(body).encode() + b"\n\0"
    header = struct.pack("<BBBBIIBBHI", 0xFF, 1, 0, 0, 0x1234ABCD, 7, 0, 0, message_id, len(data))
    return header + data


class Alarms:
    """A started AlarmIngest and the events it handed on."""

    def __init__(self, serial_ids: dict[str, str]) -> None:
        self.events: list[CameraEvent] = []
        self._lock = threading.Lock()
        cameras = CameraDirectory({}, Path("ftp"), serial_ids=serial_ids)
        self.ingest = AlarmIngest(
            AlarmServerConfig(enabled=True, host="127.0.0.1", port=0),
            EventSourceContext(cameras, self.record),
        )

    def record(self, event: CameraEvent) -> bool:
        with self._lock:
            self.events.append(event)
        return bool(event.camera)

    def send(self, data: bytes) -> None:
        with socket.create_connection(self.ingest.address, timeout=20) as sock:
            sock.sendall(data)

    def wait_for(self, count: int) -> list[CameraEvent]:
        wait_until(lambda: len(self.events) >= count, 20, f"{count} camera event(s)")
        return list(self.events)


@pytest.fixture
def alarms() -> Iterator[Alarms]:
    running = Alarms({SERIAL: "cam01"})
    running.ingest.start()
    yield running
    running.ingest.stop()


def test_a_human_detect_frame_becomes_a_camera_event(alarms: Alarms) -> None:
    alarms.send(alarm_frame(HUMAN))
    (event,) = alarms.wait_for(1)
    assert (event.camera, event.event, event.status, event.channel) == (
        "cam01",
        "HumanDetect",
        "Start",
        0,
    )
    assert event.serial_id == SERIAL and event.camera_time == "2022-09-25 06:27:33"
    assert event.remote_ip == "127.0.0.1" and event.received_at.tzinfo is not None
    assert json.loads(event.details)["AddressDecoded"] == "192.168.178.204"


def test_unknown_camera_is_logged_once_per_address(alarms: Alarms, caplog) -> None:
    stranger = {**HUMAN, "SerialID": "0000000000000000"}
    alarms.send(alarm_frame(stranger))
    alarms.send(alarm_frame({**stranger, "Status": "Stop"}))
    first, second = alarms.wait_for(2)
    assert first.camera == second.camera == ""
    wait_until(lambda: "unknown camera at 127.0.0.1" in caplog.text, 20, "the warning")
    lines = [r for r in caplog.records if r.name == OUR_LOGGER and r.levelno == logging.WARNING]
    assert len(lines) == 1 and "serial 0000000000000000" in lines[0].getMessage()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(range(256)) * 4,
        alarm_frame(HUMAN)[:20],  # the header only
        alarm_frame(HUMAN)[:60],  # cut inside the JSON
        alarm_frame(HUMAN, message_id=1006),  # another message (a keep-alive)
        b"{" * 5000,  # nested beyond reason
        b"",
    ],
    ids=["http", "binary", "header-only", "cut-json", "other-message", "deep", "empty"],
)
def test_garbage_and_truncated_frames_do_no_harm(alarms: Alarms, caplog, garbage: bytes) -> None:
    alarms.send(garbage)
    alarms.send(alarm_frame(HUMAN))
    (event,) = alarms.wait_for(1)  # the garbage made none, and the server still serves
    assert event.event == "HumanDetect"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_oversize_message_is_dropped(alarms: Alarms, caplog) -> None:
    alarms.send(alarm_frame({**HUMAN, "Descrip": "x" * MAX_MESSAGE_BYTES}))
    alarms.send(alarm_frame({**HUMAN, "Status": "Stop"}))
    (event,) = alarms.wait_for(1)
    assert event.status == "Stop"
    assert "more than" in caplog.text and "127.0.0.1" in caplog.text


def test_a_flood_of_connections_is_dropped_and_the_server_keeps_serving(alarms: Alarms) -> None:
    with ExitStack() as stack:
        for _ in range(MAX_SESSIONS_PER_IP):
            stack.enter_context(socket.create_connection(alarms.ingest.address, timeout=20))
        # One more from the same address is closed at once, unread.
        extra = stack.enter_context(socket.create_connection(alarms.ingest.address, timeout=20))
        extra.settimeout(20)
        assert extra.recv(1) == b""
    # The flood's sessions end when it closes them; a camera then gets through.
    wait_until(lambda: alarms.send(alarm_frame(HUMAN)) or alarms.events, 20, "an event")
    assert alarms.events[0].camera == "cam01"


def test_two_alarms_in_one_connection_and_stray_bytes() -> None:
    data = b"\0\0junk" + alarm_frame(HUMAN)[20:] + json.dumps({**HUMAN, "Status": "Stop"}).encode()
    events = list(parse_alarms(data, "10.0.0.9", datetime.now().astimezone()))
    assert [event.status for event in events] == ["Start", "Stop"]


@pytest.mark.parametrize(
    ("value", "address"),
    [("0xCCB2A8C0", "192.168.178.204"), ("0x0100A8C0", "192.168.0.1"), ("nonsense", "")],
)
def test_camera_address_is_little_endian_hex(value: str, address: str) -> None:
    assert camera_address(value) == address
