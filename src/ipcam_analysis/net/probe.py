"""Whether a listener cameras send to answers: a connection is the one proof they can upload."""

from __future__ import annotations

import socket
from enum import Enum

PROBE_TIMEOUT_SECONDS = 1.0
# A wildcard listener is reached through loopback.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ListenerState(Enum):
    ANSWERS = "answers"
    REFUSES = "refuses"  # nothing listens: the listener is closed
    UNKNOWN = "unknown"  # no answer in time, or no descriptor left to ask with


def probe_listener(address: tuple[str, int]) -> ListenerState:
    host, port = address
    try:
        with socket.create_connection(
            (_WILDCARDS.get(host, host), port), timeout=PROBE_TIMEOUT_SECONDS
        ):
            return ListenerState.ANSWERS
    except ConnectionRefusedError:
        return ListenerState.REFUSES
    except OSError:
        return ListenerState.UNKNOWN
