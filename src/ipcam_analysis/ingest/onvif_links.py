"""Each ONVIF camera's link to the service (subscribing, connected, failing, or followed through
its alarm), kept by the ONVIF thread and read by /healthz and the cameras page."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from ipcam_analysis.store.database import local_iso

log = logging.getLogger("ipcam_analysis.ingest.onvif")  # the ONVIF source's one log

SUBSCRIBING, CONNECTED, FAILING, ON_ALARM = "subscribing", "connected", "failing", "on_alarm"


@dataclass(frozen=True)
class CameraLink:
    """One camera's link to the service: its state since when, and what went wrong last."""

    state: str
    since: float  # epoch seconds
    error: str = ""  # why it is failing, or why the subscription ended
    retry_at: float | None = None
    last_motion: float | None = None
    snapshot_error: str = ""  # the last snapshot's failure, until one is fetched

    def report(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": local_iso(self.since),
            "error": self.error or None,
            "retry_at": local_iso(self.retry_at),
            "last_motion": local_iso(self.last_motion),
            "snapshot_error": self.snapshot_error or None,
        }


class CameraLinks:
    """The links of the cameras followed, by name: those with an address are subscribed to, the
    others followed through their alarms. Thread-safe."""

    def __init__(self, subscribed: dict[str, bool]) -> None:
        now = time.time()
        self._links = {
            name: CameraLink(SUBSCRIBING if address else ON_ALARM, now)
            for name, address in subscribed.items()
        }
        self._lock = threading.Lock()

    def report(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: link.report() for name, link in self._links.items()}

    def __getitem__(self, name: str) -> CameraLink:
        with self._lock:
            return self._links[name]

    def update(self, name: str, **changes: Any) -> None:
        with self._lock:
            self._links[name] = replace(self._links[name], **changes)

    def connected(self, name: str) -> None:
        failed = self[name].error
        self._set_state(name, CONNECTED, error="", retry_at=None)
        log.info("ONVIF camera %s: subscribed to motion events%s", name, " again" if failed else "")

    def failed(self, name: str, error: str, delay: float, was_connected: bool) -> None:
        """One line per failure, unless it repeats the one before (then at DEBUG)."""
        repeated = not was_connected and self[name].error == error
        state = SUBSCRIBING if was_connected else FAILING
        self._set_state(name, state, error=error, retry_at=time.time() + delay)
        what = "the subscription ended" if was_connected else "cannot subscribe to motion events"
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "ONVIF camera %s: %s (%s); trying again in %.0f s",
            name,
            what,
            error,
            delay,
        )

    def _set_state(self, name: str, state: str, **changes: Any) -> None:
        with self._lock:
            link = self._links[name]
            since = link.since if link.state == state else time.time()
            self._links[name] = replace(link, state=state, since=since, **changes)
