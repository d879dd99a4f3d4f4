"""An asyncio server on a loop of its own, in a daemon thread (the SMTP and alarm listeners)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ipcam_analysis.net.limits import keep_accepting_quietly

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10

ServerFactory = Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, asyncio.Server]]


class ServerThread:
    """start() binds in the caller's thread (so a busy port is an error there), then serves."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, make_server: ServerFactory) -> tuple[str, int]:
        """The (host, port) listened on; raises OSError when it cannot listen."""
        loop = asyncio.new_event_loop()
        keep_accepting_quietly(loop, f"The {self._name} listener")
        try:
            server = loop.run_until_complete(make_server(loop))
        except BaseException:
            loop.close()
            raise
        self._loop, self._server = loop, server
        self._thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        self._thread.start()
        host, port = server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def stop(self, close_sessions: Callable[[], None]) -> None:
        """Stop the loop, close the listener and every session (`close_sessions` closes their
        transports), and let what they were doing end."""
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None or server is None:
            return
        self._loop = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            log.warning("The %s thread did not stop within %d s", self._name, STOP_TIMEOUT_SECONDS)
            return
        server.close()
        close_sessions()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()

        async def settle() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        loop.run_until_complete(settle())
        loop.close()
