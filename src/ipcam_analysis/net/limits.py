"""Open files: the limit raised at start, and listeners that outlive reaching it (one log line)."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

# accept() failures that mean "nothing free right now": the listener waits and tries again.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_SECONDS = 1.0  # asyncio's own delay before it tries again
# A burst of failures is logged once; this long without one, the next starts a new burst.
QUIET_SECONDS_ENDING_A_BURST = 60.0


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one (systemd's soft default, 1,024, is
    reached by a thousand idle connections); logs the figure and returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # an infinite hard limit, say
            log.warning("Open files: cannot raise the limit from %d to %d: %s", soft, hard, exc)
            return soft
        log.info("Open files: up to %d (raised from %d)", hard, soft)
        return hard
    log.info("Open files: up to %d", soft)
    return soft


class OutOfFilesLog:
    """One warning per burst of accept() failures for want of descriptors, not one per retry."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._last_failure: float | None = None
        self._lock = threading.Lock()

    def note(self, exc: OSError) -> None:
        now = time.monotonic()
        with self._lock:
            quiet = self._last_failure is None or now - self._last_failure > (
                QUIET_SECONDS_ENDING_A_BURST
            )
            self._last_failure = now
        if quiet:
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            log.warning(
                "%s cannot accept connections: %s (open files limit %d); it tries again every"
                " %g s until some close",
                self._what,
                exc.strerror or exc,
                limit,
                ACCEPT_RETRY_SECONDS,
            )


def keep_accepting_quietly(loop: asyncio.AbstractEventLoop, what: str) -> None:
    """asyncio already keeps a listener through EMFILE (it retries after a second); this turns
    its traceback per retry into one line per burst."""
    burst = OutOfFilesLog(what)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        accepting = "accept" in str(context.get("message", ""))
        if accepting and isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES:
            burst.note(exc)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
