"""Runs the dashboard's ASGI app with uvicorn in a daemon thread, on a socket bound beforehand."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from ipcam_analysis.errors import UserError

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10
# Open requests get this long to finish at shutdown; then their connections are dropped.
GRACEFUL_STOP_SECONDS = 5


class WebServerError(UserError):
    """The dashboard cannot start; the message is one line for the user."""


class WebServer:
    """`start()` returns once the dashboard is listening; `stop()` is graceful and bounded."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._address: tuple[str, int] | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the port is the kernel's choice when 0 was asked."""
        if self._address is None:
            raise RuntimeError("the dashboard is not started")
        return self._address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        # Binding here, not in uvicorn, turns "port in use" into an error at start-up and
        # tells the real port when 0 was asked.
        sock = _listening_socket(self._host, self._port)
        self._address = sock.getsockname()[:2]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            ws="none",
            log_config=None,  # records go to our logging set-up
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise WebServerError(f"the dashboard did not start on {self._host}:{self._port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Finish open requests (at most GRACEFUL_STOP_SECONDS), then close; safe to repeat."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(GRACEFUL_STOP_SECONDS + 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2)
            if self._thread.is_alive():
                log.warning("The dashboard thread did not stop in time")


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise WebServerError(f"cannot listen for the dashboard on {host}:{port}: {exc}") from None
    try:
        # Lets a restart bind at once while old connections linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise WebServerError(
            f"cannot listen for the dashboard on {host}:{port}: {exc.strerror or exc}"
            " (change web.port, or set web.enabled: false)"
        ) from None
    sock.setblocking(False)
    return sock
