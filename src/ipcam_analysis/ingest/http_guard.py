"""uvicorn's HTTP protocol with a share of the connections per address and deadlines for a
request's headers and body: one address's idle or trickling connections cannot fill the
listener (uvicorn itself waits forever for the first request on a connection)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ipcam_analysis.ingest.throttle import SessionCount

log = logging.getLogger(__name__)

HEADERS_DEADLINE_SECONDS = 10.0  # from the connection (or the last answer) to a request's headers
BODY_DEADLINE_SECONDS = 60.0  # then to its last byte: 20 MB at 3 Mbit/s
REFUSED_LINGER_SECONDS = 2.0  # a refused connection stays open this long for its 503 to be read
RETRY_AFTER_SECONDS = 30
_REFUSAL_TEXT = b"Too many connections from your address; try again later\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Retry-After: %d\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
    % (RETRY_AFTER_SECONDS, len(_REFUSAL_TEXT), _REFUSAL_TEXT)
)


class GuardedH11Protocol(H11Protocol):
    """One connection. `make_guarded_protocol` gives each server its own `sessions`."""

    sessions: SessionCount
    what: str
    headers_seconds = HEADERS_DEADLINE_SECONDS
    body_seconds = BODY_DEADLINE_SECONDS

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else ""
        self._deadline: asyncio.TimerHandle | None = None
        self._admitted = self.sessions.admit(self._address)
        if not self._admitted:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._expect(self.headers_seconds, self._headers_due)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            super().data_received(data)
        # else: a refused client's request, read only so that closing sends no reset

    def eof_received(self) -> None:
        if not self._admitted:
            self.transport.close()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._admitted:
            self._admitted = False
            self.sessions.release(self._address)
            super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect(self.headers_seconds, self._headers_due)  # the next request's

    def _refuse(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        if self.sessions.refused_in_a_row(self._address) == 1:  # not a line per connection
            log.warning(
                "%s: too many connections from %s; refusing more until some close",
                self.what,
                self._address,
            )
        transport.write(REFUSAL)
        transport.write_eof()
        self._expect(REFUSED_LINGER_SECONDS, transport.close)

    def _expect(self, seconds: float, check: Callable[[], None]) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.get_running_loop().call_later(seconds, check)

    def _headers_due(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._expect(self.body_seconds, self._body_due)
        elif state is h11.IDLE:  # no request, or its headers still coming
            self._cut_off("headers")

    def _body_due(self) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            self._cut_off("body")

    def _cut_off(self, part: str) -> None:
        if not self.transport.is_closing():
            log.debug(
                "%s: closed a connection from %s sending no %s", self.what, self._address, part
            )
            self.transport.close()


def make_guarded_protocol(
    what: str,
    max_connections: int,
    *,
    headers_seconds: float = HEADERS_DEADLINE_SECONDS,
    body_seconds: float = BODY_DEADLINE_SECONDS,
) -> type[GuardedH11Protocol]:
    """A protocol class for one server, with its own count of connections per address."""
    attributes = {
        "sessions": SessionCount(total=max_connections),
        "what": what,
        "headers_seconds": headers_seconds,
        "body_seconds": body_seconds,
    }
    return type("GuardedProtocol", (GuardedH11Protocol,), attributes)
