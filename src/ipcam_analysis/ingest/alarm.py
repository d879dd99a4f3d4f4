"""The XMeye "alarm center": cameras report events (HumanDetect...) over TCP; each becomes a CameraEvent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import Field

from ipcam_analysis.errors import UserError
from ipcam_analysis.ingest.alarm_frames import parse_alarms
from ipcam_analysis.ingest.context import EventSourceContext
from ipcam_analysis.ingest.loop import ServerThread
from ipcam_analysis.ingest.throttle import SessionShares
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import CameraEvent

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # what one connection may send; an alarm is a few hundred bytes
READ_SECONDS = 10.0  # a camera sends and closes; one that does not is read for this long
HANDLER_THREADS = 2
# The same alarm again (camera, event, status, channel) within this is counted, not recorded.
REPEAT_WINDOW_SECONDS = 10.0
MAX_WINDOWS = 4096  # alarms being counted at once; beyond, new ones wait for a window to close
MAX_PENDING_EVENTS = 256  # handed to the database and not yet recorded


class AlarmServerConfig(StrictModel):
    """`alarm_server:`; XMeye cameras' "alarm center" (Alarm → Alarm center in their menus)."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(15002, ge=0, le=65535)  # 0: any free port (tests)


class AlarmIngestError(UserError):
    """The alarm server cannot start; the message is one line for the user."""


class AlarmIngest:
    """Listens for the cameras' alarm connections; hands each alarm to the context's
    `on_camera_event`, which returns whether it knew the camera (by serial id, which the
    cameras' `serial_id` tell, or by the address of its uploads)."""

    def __init__(self, settings: AlarmServerConfig, context: EventSourceContext) -> None:
        self._settings = settings
        self._serial_ids = context.cameras.serial_ids
        self._on_camera_event = context.on_camera_event
        self._connections = SessionShares[asyncio.StreamWriter](asyncio.StreamWriter.close)
        self._repeats = RepeatWindows()
        self._pending = 0  # events handed to the threads, not yet recorded
        self._unknown_addresses: set[str] = set()  # each logged once
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

        def listen(loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, asyncio.Server]:
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
        self._thread.stop(self._connections.close_all)
        self._handling.shutdown(wait=True)
        if self._address is not None:
            log.info("Alarm server stopped")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self._connections.admit(ip, writer):
            log.debug("Alarm connection from %s dropped: too many at once", ip)
            writer.close()
            return
        try:
            data = await _read_to_close(reader)
        finally:
            self._connections.release(ip, writer)
            writer.close()
        if len(data) > MAX_MESSAGE_BYTES:
            log.warning("Alarm connection from %s sent more than %d bytes: dropped", ip, len(data))
            return
        received_at = datetime.now().astimezone()
        for event in parse_alarms(data, ip, received_at):
            event = self._known_serial(event)
            if self._repeats.is_repeat(event):
                continue
            if self._pending >= MAX_PENDING_EVENTS:
                log.debug("Alarm %s from %s dropped: too many waiting", event.event, ip)
                continue
            await self._hand_on(event)

    async def _hand_on(self, event: CameraEvent) -> None:
        ip = event.remote_ip
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            known = await loop.run_in_executor(self._handling, self._on_camera_event, event)
        except Exception as exc:  # the loop serves every camera
            log.error("Could not record the alarm %s from %s: %s", event.event, ip, exc)
            return
        finally:
            self._pending -= 1
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
        camera = self._serial_ids.get(event.serial_id, "")
        return replace(event, camera=camera) if camera else event


class RepeatWindows:
    """The first of identical alarms (same address, serial, event, status, channel) is recorded;
    repeats within REPEAT_WINDOW_SECONDS are counted, and the count logged in one line when the
    window closes. Used on the server's loop only."""

    def __init__(self) -> None:
        self._repeats: dict[tuple[Any, ...], int] = {}  # open windows: alarm -> repeats so far

    def is_repeat(self, event: CameraEvent) -> bool:
        """False for the first of its window (to be recorded); True, and counted, otherwise.
        True as well when MAX_WINDOWS are open: a flood of distinct alarms is not recorded."""
        key = (event.remote_ip, event.serial_id, event.event, event.status, event.channel)
        if key in self._repeats:
            self._repeats[key] += 1
            return True
        if len(self._repeats) >= MAX_WINDOWS:
            return True
        self._repeats[key] = 0
        asyncio.get_running_loop().call_later(REPEAT_WINDOW_SECONDS, self._close, key, event)
        return False

    def _close(self, key: tuple[Any, ...], event: CameraEvent) -> None:
        repeats = self._repeats.pop(key, 0)
        if repeats:
            log.info(
                "Alarm %s %s from %s (serial %s) came %d more times within %.0f s: recorded once",
                event.event,
                event.status,
                event.remote_ip,
                event.serial_id or "none",
                repeats,
                REPEAT_WINDOW_SECONDS,
            )


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
