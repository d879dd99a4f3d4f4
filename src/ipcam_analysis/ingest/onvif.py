"""Cameras that only announce motion: the ONVIF source subscribes to each camera's motion events
(PullPoint) and on motion fetches its snapshot into the queue; a camera with only a
`snapshot_url` has it fetched when its own alarm (the alarm server) reports motion."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator, model_validator

from ipcam_analysis.ingest.context import SourceContext
from ipcam_analysis.ingest.handoff import NotAccepted, Received
from ipcam_analysis.ingest.onvif_client import (
    MOTION,
    SNAPSHOT_TIMEOUT_SECONDS,
    LinkFailure,
    SnapshotError,
    describe_error,
    fetch_snapshot,
    load_client_library,
    motion_topic,
    onvif_endpoint,
    snapshot_uri,
)
from ipcam_analysis.ingest.onvif_links import CONNECTED, CameraLinks
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import CameraEvent, Upload

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

SUBSCRIPTION_LENGTH = timedelta(minutes=10)  # the library renews it before it ends
PULL_WAIT = timedelta(seconds=60)  # how long one PullMessages waits for an event
PULL_MESSAGE_LIMIT = 100
# Firmware that answers a pull at once, empty, instead of waiting is asked again after this.
QUICK_EMPTY_PULL_SECONDS = 1.0
FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 300.0
HEALTHY_SECONDS = 60.0  # a subscription that lived this long is followed at once when it ends
MIN_SECONDS_BETWEEN_SNAPSHOTS = 2.0  # per camera: the motion events in between take no picture
STOP_SECONDS = 10.0


class OnvifCameraConfig(StrictModel):
    """`cameras.<name>.onvif`: a camera that announces motion rather than uploading. With
    `address`, the service subscribes to its motion events and fetches its snapshot (the address
    ONVIF gives, or `snapshot_url`) on each; with only `snapshot_url`, the snapshot is fetched
    when the camera's own alarm (alarm_server) reports motion."""

    address: str | None = None  # 192.168.1.30, 192.168.1.30:2020 (Tapo), https://host:port
    username: str = ""
    password: SecretStr = SecretStr("")
    # Secret as a whole: many cameras take their password in it (…&password=…).
    snapshot_url: SecretStr | None = None

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str | None) -> str | None:
        if value is not None:
            onvif_endpoint(value)
        return value

    @field_validator("snapshot_url")
    @classmethod
    def _web_address(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// address")
        return value

    @model_validator(mode="after")
    def _something_to_follow(self) -> OnvifCameraConfig:
        if not self.address and not self.snapshot_url:
            raise ValueError("set address (the camera's ONVIF address), snapshot_url, or both")
        return self


class OnvifSource:
    """Follows the cameras on an asyncio loop in a thread of its own. It reaches out to the
    cameras rather than listening (a poller), so it is built from each camera's `onvif:`
    section, and its health is each camera's link (`camera_links`)."""

    def __init__(self, settings: Mapping[str, OnvifCameraConfig], context: SourceContext) -> None:
        self._cameras = settings
        self._root_dir = context.cameras.root_dir  # where snapshots wait until analysed
        self._intake = context.intake
        self._links = CameraLinks({name: bool(camera.address) for name, camera in settings.items()})
        self._last_snapshot: dict[str, float] = {}
        self._alarm_fetches: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        load_client_library()
        loop = asyncio.new_event_loop()
        self._main = loop.create_task(self._run())
        self._thread = threading.Thread(target=self._serve, args=(loop,), name="onvif", daemon=True)
        self._loop = loop
        self._thread.start()
        subscribed = sum(1 for camera in self._cameras.values() if camera.address)
        log.info(
            "ONVIF: following %d camera(s), %d more on their alarms",
            subscribed,
            len(self._cameras) - subscribed,
        )

    def stop(self) -> None:
        """Unsubscribes (at most STOP_SECONDS spent on it) and ends the thread."""
        loop, main, thread = self._loop, self._main, self._thread
        if loop is None or main is None or thread is None:
            return
        self._loop = None
        loop.call_soon_threadsafe(main.cancel)
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            log.warning("The ONVIF thread did not stop within %.0f s", STOP_SECONDS)

    def camera_links(self) -> dict[str, dict[str, Any]]:
        """Each camera's link, as /healthz and the cameras page show it."""
        return self._links.report()

    def camera_reported(self, event: CameraEvent) -> None:
        """What a camera reported through another source (its alarm): motion from a camera
        with only a snapshot_url has its snapshot fetched. Returns at once."""
        camera = self._cameras.get(event.camera)
        loop = self._loop
        if camera is None or camera.address or camera.snapshot_url is None or loop is None:
            return
        if event.status not in ("", "Start") or not MOTION.search(event.event):
            return
        url = camera.snapshot_url.get_secret_value()
        with suppress(RuntimeError):  # the loop has just stopped
            loop.call_soon_threadsafe(self._fetch_on_alarm, event.camera, camera, url)

    def _fetch_on_alarm(self, name: str, camera: OnvifCameraConfig, url: str) -> None:
        """On the loop: the snapshot is fetched in a task of its own, cancelled by stop()."""
        task = asyncio.create_task(self._take_snapshot(name, camera, url, note=""))
        self._alarm_fetches.add(task)
        task.add_done_callback(self._alarm_fetches.discard)

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._main is not None
        with suppress(asyncio.CancelledError):  # stopped before it began
            loop.run_until_complete(self._main)
        loop.close()

    async def _run(self) -> None:
        """Follows each camera with an address until stop() cancels it."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=SNAPSHOT_TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout)
        followers = [
            asyncio.create_task(self._follow(name, camera), name=f"onvif {name}")
            for name, camera in self._cameras.items()
            if camera.address
        ]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            tasks = [*followers, *self._alarm_fetches]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._session.close()

    async def _follow(self, name: str, camera: OnvifCameraConfig) -> None:
        """Subscribe, pull, and subscribe again whenever the link is lost: at once after a
        subscription that lived, else after a delay that doubles with each failure."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._subscription(name, camera)
            except LinkFailure as failure:
                was_connected = self._links[name].state == CONNECTED
                lived = time.monotonic() - started >= HEALTHY_SECONDS
                failures = 0 if was_connected and lived else failures + 1
                delay = retry_delay(failures)
                self._links.failed(name, str(failure), delay, was_connected)
                await asyncio.sleep(delay)

    async def _subscription(self, name: str, camera: OnvifCameraConfig) -> None:
        """One subscription's life; raises LinkFailure when it cannot be made or ends."""
        from onvif import ONVIFCamera

        assert camera.address is not None
        host, port = onvif_endpoint(camera.address)
        password = camera.password.get_secret_value()
        # adjust_time: WS-Security logins carry a time, which a camera with a wrong clock
        # refuses unless it is the camera's own. no_cache: no cache file in the home folder.
        device = ONVIFCamera(host, port, camera.username, password, no_cache=True, adjust_time=True)
        manager = None
        asked = "GetSystemDateAndTime, GetServices"
        try:
            await device.update_xaddrs()
            asked = "GetProfiles, GetSnapshotUri"
            snapshot_url = (
                camera.snapshot_url.get_secret_value()
                if camera.snapshot_url
                else await snapshot_uri(device, name)
            )
            asked = "CreatePullPointSubscription"
            lost = asyncio.Event()  # the library could not renew the subscription
            manager = await device.create_pullpoint_manager(SUBSCRIPTION_LENGTH, lost.set)
            self._links.connected(name)
            asked = "PullMessages"
            await self._pull(name, camera, manager.get_service(), lost, snapshot_url)
            raise LinkFailure("Renew", "the camera did not renew the subscription")
        except (LinkFailure, asyncio.CancelledError):
            raise
        except Exception as exc:  # whatever a camera answers, the source follows it again
            raise LinkFailure(asked, describe_error(exc, name)) from exc
        finally:
            if manager is not None:
                with suppress(Exception):
                    await asyncio.wait_for(manager.shutdown(), STOP_SECONDS / 2)
            with suppress(Exception):
                await device.close()

    async def _pull(
        self,
        name: str,
        camera: OnvifCameraConfig,
        pullpoint: Any,
        lost: asyncio.Event,
        snapshot_url: str,
    ) -> None:
        """Pull events until the subscription is lost; a motion takes a snapshot."""
        while not lost.is_set():
            asked_at = time.monotonic()
            result = await pullpoint.PullMessages(
                {"MessageLimit": PULL_MESSAGE_LIMIT, "Timeout": PULL_WAIT}
            )
            topics = [topic for m in result.NotificationMessage or () if (topic := motion_topic(m))]
            if topics:
                log.info("ONVIF camera %s reported motion (%s)", name, topics[0])
                note = f"ONVIF motion: {topics[0]}"
                await self._take_snapshot(name, camera, snapshot_url, note)
            elif time.monotonic() - asked_at < QUICK_EMPTY_PULL_SECONDS:
                await asyncio.sleep(QUICK_EMPTY_PULL_SECONDS)

    async def _take_snapshot(
        self, name: str, camera: OnvifCameraConfig, url: str, note: str
    ) -> None:
        """Fetch the camera's snapshot and queue it as an upload."""
        now = time.time()
        self._links.update(name, last_motion=now)
        if now - self._last_snapshot.get(name, 0.0) < MIN_SECONDS_BETWEEN_SNAPSHOTS:
            log.debug(
                "Camera %s: motion again within %.0f s: no new snapshot",
                name,
                MIN_SECONDS_BETWEEN_SNAPSHOTS,
            )
            return
        self._last_snapshot[name] = now
        if self._intake.refusal() is not None:  # logged by the admission, once per episode
            return
        assert self._session is not None
        password = camera.password.get_secret_value()
        try:
            data = await fetch_snapshot(self._session, url, camera.username, password, name)
        except SnapshotError as exc:
            del self._last_snapshot[name]  # the next motion tries again
            level = (
                logging.DEBUG if self._links[name].snapshot_error == str(exc) else logging.WARNING
            )
            log.log(level, "Camera %s: the snapshot could not be fetched: %s", name, exc)
            self._links.update(name, snapshot_error=str(exc))
            return
        self._links.update(name, snapshot_error="")
        upload = self._new_upload(name, url, data, note)
        with suppress(NotAccepted):  # logged by the intake; the next motion takes another
            await asyncio.to_thread(self._intake.accept, [Received(upload, data)])

    def _new_upload(self, name: str, url: str, data: bytes, note: str) -> Upload:
        """The Upload for a fetched snapshot, in a folder per camera and day: <root>/<camera>/onvif/…"""
        received = datetime.now().astimezone()
        home = self._root_dir / name
        file_name = "snapshot.png" if data.startswith(b"\x89PNG") else "snapshot.jpg"
        unique = f"{received:%H%M%S}-{uuid.uuid4().hex[:8]}-{file_name}"
        return Upload(
            camera=name,
            path=home / "onvif" / f"{received:%Y-%m-%d}" / unique,
            received_at=received,
            remote_ip=urlsplit(url).hostname or "",
            original_name=file_name,
            source="onvif",
            remove_when_done=True,
            home=home,
            note=note,
        )


def retry_delay(failures: int) -> float:
    """0 after no failure, then FIRST_RETRY_SECONDS doubling up to MAX_RETRY_SECONDS, with a
    tenth's jitter so that cameras failing together do not retry together."""
    if failures == 0:
        return 0.0
    delay = min(FIRST_RETRY_SECONDS * 2 ** (failures - 1), MAX_RETRY_SECONDS)
    return delay * random.uniform(0.9, 1.0)
