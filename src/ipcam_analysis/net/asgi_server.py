"""Runs an ASGI app (the dashboard, HTTP uploads) with uvicorn in a daemon thread, on a socket
bound beforehand."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from ipcam_analysis.errors import UserError
from ipcam_analysis.net.limits import keep_accepting_quietly

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10
# Open requests get this long to finish at shutdown; then their connections are dropped.
GRACEFUL_STOP_SECONDS = 5


class ListenerError(UserError):
    """A listener cannot start; the message is one line for the user."""


class _QuietServer(uvicorn.Server):
    """uvicorn's server, whose event loop logs a burst of "too many open files" on accept as
    one line. `run()` stays uvicorn's, which makes the loop the way each Python needs."""

    def __init__(self, config: uvicorn.Config, what: str) -> None:
        super().__init__(config)
        self._what = what

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        keep_accepting_quietly(asyncio.get_running_loop(), self._what)
        await super().serve(sockets)


class AsgiServer:
    """`start()` returns once the app is listening; `stop()` is graceful and bounded.

    `what` names the listener in messages ("the dashboard"), `hint` says what to change when
    its port cannot be had, `thread_name` names its thread. `http_protocol`: uvicorn's HTTP/1.1
    protocol class, or a subclass of it that guards the connections.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        what: str,
        hint: str,
        thread_name: str,
        http_protocol: type[asyncio.Protocol] | None = None,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._what = what
        self._hint = hint
        self._thread_name = thread_name
        self._http_protocol = http_protocol
        self._address: tuple[str, int] | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the port is the kernel's choice when 0 was asked."""
        if self._address is None:
            raise RuntimeError(f"{self._what} is not started")
        return self._address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        # Binding here, not in uvicorn, turns "port in use" into an error at start-up and
        # tells the real port when 0 was asked.
        sock = self._listening_socket()
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
            http=self._http_protocol or "auto",
        )
        self._server = _QuietServer(config, self._what[:1].upper() + self._what[1:])
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=self._thread_name,
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ListenerError(f"{self._what} did not start on {self._host}:{self._port}")
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
                log.warning("The thread of %s did not stop in time", self._what)

    def _listening_socket(self) -> socket.socket:
        host, port, where = self._host, self._port, f"{self._what} on {self._host}:{self._port}"
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise ListenerError(f"cannot listen for {where}: {exc}") from None
        try:
            # Lets a restart bind at once while old connections linger in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ListenerError(
                f"cannot listen for {where}: {exc.strerror or exc} ({self._hint})"
            ) from None
        sock.setblocking(False)
        return sock
