"""Tells systemd the service is ready and alive while every listener answers; ends it when
a listener has closed, so that it is restarted rather than refusing cameras for good."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping

from ipcam_analysis.net.probe import ListenerState, probe_listener

log = logging.getLogger(__name__)

CHECK_SECONDS = 10.0  # without a systemd watchdog; with one, twice per WatchdogSec
FIRST_CHECK_SECONDS = 0.5  # until every listener answers and READY=1 is sent
REFUSALS_BEFORE_EXIT = 2  # checks in a row a listener refuses connections

Listeners = Callable[[], Mapping[str, tuple[str, int] | None]]


class ServiceWatchdog:
    """sd_notify by hand (a datagram to $NOTIFY_SOCKET): READY=1 once every listener answers,
    then WATCHDOG=1 at each check they all pass. A listener refusing connections
    REFUSALS_BEFORE_EXIT checks in a row is logged in one line and `on_listener_down` called."""

    def __init__(
        self,
        listeners: Listeners,
        on_listener_down: Callable[[], None],
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._listeners = listeners
        self._on_listener_down = on_listener_down
        self._notify_socket = environ.get("NOTIFY_SOCKET", "")
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        self._interval = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() else CHECK_SECONDS
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self.listener_down: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Before the listeners close: their refusals are then no fault."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        refusals: Counter[str] = Counter()
        ready = False
        while not self._stopping.wait(self._interval if ready else FIRST_CHECK_SECONDS):
            states = {
                kind: probe_listener(address)
                for kind, address in self._listeners().items()
                if address is not None
            }
            refusals = Counter(
                {
                    kind: refusals[kind] + 1
                    for kind, s in states.items()
                    if s is ListenerState.REFUSES
                }
            )
            down = [kind for kind, count in refusals.items() if count >= REFUSALS_BEFORE_EXIT]
            if down and not self._stopping.is_set():
                self.listener_down = down[0]
                log.error(
                    "The %s listener no longer accepts connections; stopping so that the service"
                    " manager starts it again",
                    down[0],
                )
                self._on_listener_down()
                return
            if all(state is ListenerState.ANSWERS for state in states.values()):
                if not ready:
                    ready = self._notify("READY=1")
                self._notify("WATCHDOG=1")

    def _notify(self, message: str) -> bool:
        """Whether systemd was told (always true when not run by systemd)."""
        if not self._notify_socket:
            return True
        # An abstract socket's name starts with @ in the variable and with NUL on the wire.
        path = self._notify_socket
        address = "\0" + path[1:] if path.startswith("@") else path
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message.encode())
        except OSError as exc:  # no descriptor left: the next check tries again
            log.debug("Cannot tell systemd %s: %s", message, exc)
            return False
        return True
