"""XMeye alarm frames taken apart: what one connection sent becomes at most a few CameraEvents,
at a bounded cost whatever it holds."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import struct
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ipcam_analysis.values import CameraEvent

log = logging.getLogger(__name__)

# The Sofia/XMeye header, little-endian: 0xFF, version, 2 reserved, session id, sequence,
# total and current packet, message id, data length.
HEADER = struct.Struct("<BBBBIIBBHI")
ALARM_MESSAGE_ID = 1508
MAX_TEXT = 200  # each field kept from the camera's JSON
# An alarm is a few hundred bytes of flat JSON, one per connection; these bound what a
# stranger's connection costs: each JSON read, how deep it nests, how many are read.
MAX_FRAME_BYTES = 8 * 1024
MAX_JSON_DEPTH = 8
MAX_ALARMS_PER_CONNECTION = 8
MAX_ATTEMPTS_PER_CONNECTION = 32  # places a JSON object may start (each `{`)
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def parse_alarms(data: bytes, remote_ip: str, received_at: datetime) -> Iterator[CameraEvent]:
    """Every alarm in what a connection sent (MAX_ALARMS_PER_CONNECTION at most); anything else
    (other messages, garbage, JSON too big or too deep) is skipped.

    A message with the header must be an alarm (id 1508); the JSON is read from the first `{`,
    so a firmware's stray bytes around it do no harm."""
    if len(data) >= HEADER.size and data[0] == 0xFF:
        message_id = HEADER.unpack_from(data)[8]
        if message_id != ALARM_MESSAGE_ID:
            log.debug("Alarm server: message %d from %s ignored", message_id, remote_ip)
            return
    text = data.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    start, alarms = text.find("{"), 0
    for _ in range(MAX_ATTEMPTS_PER_CONNECTION):
        if start == -1 or alarms == MAX_ALARMS_PER_CONNECTION:
            return
        frame = text[start : start + MAX_FRAME_BYTES]
        try:
            if _nesting(frame) > MAX_JSON_DEPTH:
                raise ValueError("nested too deeply")
            body, end = decoder.raw_decode(frame)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(body, dict) and isinstance(body.get("Event"), str):
            alarms += 1
            yield _camera_event(body, remote_ip, received_at)
        start = text.find("{", start + end)


def _nesting(frame: str) -> int:
    """How deep the JSON value at the start of `frame` nests (strings skipped), counted up to
    its end or to one past MAX_JSON_DEPTH, without parsing it."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(frame):
        bracket = token.group()
        if bracket in ("{", "["):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        elif bracket in ("}", "]"):
            depth -= 1
            if depth <= 0:
                break
    return deepest


def _camera_event(body: dict[str, Any], remote_ip: str, received_at: datetime) -> CameraEvent:
    def field(name: str) -> str:
        value = body.get(name)
        return str(value)[:MAX_TEXT] if value is not None else ""

    channel = body.get("Channel")
    details = {key[:MAX_TEXT]: str(value)[:MAX_TEXT] for key, value in list(body.items())[:20]}
    camera_ip = camera_address(field("Address"))
    if camera_ip:
        details["AddressDecoded"] = camera_ip
    return CameraEvent(
        camera="",
        remote_ip=remote_ip,
        received_at=received_at,
        event=field("Event"),
        status=field("Status"),
        channel=channel if isinstance(channel, int) and not isinstance(channel, bool) else None,
        serial_id=field("SerialID"),
        camera_time=field("StartTime"),
        details=json.dumps(details, ensure_ascii=False),
    )


def camera_address(value: str) -> str:
    """XMeye's `Address`, the camera's IPv4 as little-endian hex ("0xCCB2A8C0" is
    192.168.178.204); "" when it is not one."""
    try:
        number = int(value, 16)
        return str(ipaddress.IPv4Address(number.to_bytes(4, "little")))
    except (ValueError, OverflowError):
        return ""
