"""The XMeye "alarm center": cameras report events (HumanDetect...) over TCP; each becomes a CameraEvent."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import struct
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import Field

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.loop import ServerThread
from ipcam_analysis.ingest.throttle import SessionCount
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import CameraEvent

log = logging.getLogger(__name__)

# The Sofia/XMeye header, little-endian: 0xFF, version, 2 reserved, session id, sequence,
# total and current packet, message id, data length.
HEADER = struct.Struct("<BBBBIIBBHI")
ALARM_MESSAGE_ID = 1508
MAX_MESSAGE_BYTES = 64 * 1024  # an alarm is a few hundred bytes
READ_SECONDS = 10.0  # a camera sends and closes; one that does not is read for this long
MAX_TEXT = 200  # each field kept from the camera's JSON
HANDLER_THREADS = 2


class AlarmServerConfig(StrictModel):
    """`alarm_server:`; XMeye cameras' "alarm center" (Alarm → Alarm center in their menus)."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(15002, ge=0, le=65535)  # 0: any free port (tests)
    # Filled from cameras.<name>.serial_id: which camera a serial number is.
    serial_ids: dict[str, str] = Field(default_factory=dict)


class AlarmIngestError(UserError):
    """The alarm server cannot start; the message is one line for the user."""


def parse_alarms(data: bytes, remote_ip: str, received_at: datetime) -> Iterator[CameraEvent]:
    """Every alarm in what a connection sent; anything else (other messages, garbage) is skipped.

    A message with the header must be an alarm (id 1508); the JSON is read from the first `{`,
    so a firmware's stray bytes around it do no harm."""
    if len(data) >= HEADER.size and data[0] == 0xFF:
        message_id = HEADER.unpack_from(data)[8]
        if message_id != ALARM_MESSAGE_ID:
            log.debug("Alarm server: message %d from %s ignored", message_id, remote_ip)
            return
    text = data.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            body, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(body, dict) and isinstance(body.get("Event"), str):
            yield _camera_event(body, remote_ip, received_at)
        start = text.find("{", end)


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


class AlarmIngest:
    """Listens for the cameras' alarm connections; hands each alarm to `on_camera_event`, which
    returns whether it knew the camera (by serial id, or by the address of its uploads)."""

    def __init__(
        self, settings: AlarmServerConfig, on_camera_event: Callable[[CameraEvent], bool]
    ) -> None:
        self._settings = settings
        self._on_camera_event = on_camera_event
        self._sessions = SessionCount()
        self._unknown_addresses: set[str] = set()  # each logged once
        self._open: set[asyncio.StreamWriter] = set()
        self._handling = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="alarm")
        self._thread = ServerThread("alarm")
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the alarm server is not started")
        return self._address

    def start(self) -> None:
        settings = self._settings

        def listen(loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, asyncio.AbstractServer]:
            return asyncio.start_server(self._connection, settings.host, settings.port)

        try:
            self._address = self._thread.start(listen)
        except OSError as exc:
            raise AlarmIngestError(
                f"cannot listen for camera alarms on {settings.host}:{settings.port}:"
                f" {exc.strerror or exc}"
            ) from None
        log.info("Alarm server listening on %s:%d", *self._address)

    def stop(self) -> None:
        def close_sessions() -> None:
            for writer in list(self._open):
                writer.close()

        self._thread.stop(close_sessions)
        self._handling.shutdown(wait=True)
        if self._address is not None:
            log.info("Alarm server stopped")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self._sessions.admit(ip):
            log.debug("Alarm connection from %s dropped: too many at once", ip)
            writer.close()
            return
        self._open.add(writer)
        try:
            data = await _read_to_close(reader)
        finally:
            self._open.discard(writer)
            self._sessions.release(ip)
            writer.close()
        if len(data) > MAX_MESSAGE_BYTES:
            log.warning("Alarm connection from %s sent more than %d bytes: dropped", ip, len(data))
            return
        received_at = datetime.now().astimezone()
        for event in parse_alarms(data, ip, received_at):
            event = self._known_serial(event)
            loop = asyncio.get_running_loop()
            try:
                known = await loop.run_in_executor(self._handling, self._on_camera_event, event)
            except Exception as exc:  # the loop serves every camera
                log.error("Could not record the alarm %s from %s: %s", event.event, ip, exc)
                continue
            if not known and ip not in self._unknown_addresses:
                self._unknown_addresses.add(ip)
                log.warning(
                    "Alarm %s from an unknown camera at %s (serial %s): set cameras.<name>."
                    "serial_id, or it is matched once the camera uploads from this address",
                    event.event,
                    ip,
                    event.serial_id or "none",
                )

    def _known_serial(self, event: CameraEvent) -> CameraEvent:
        camera = self._settings.serial_ids.get(event.serial_id, "")
        return replace(event, camera=camera) if camera else event


async def _read_to_close(reader: asyncio.StreamReader) -> bytes:
    """What the camera sends until it closes, at most one byte over MAX_MESSAGE_BYTES (so an
    oversize message is seen as such) and for at most READ_SECONDS."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + READ_SECONDS
    while size <= MAX_MESSAGE_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(MAX_MESSAGE_BYTES + 1 - size), remaining)
        except (asyncio.TimeoutError, ConnectionError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
