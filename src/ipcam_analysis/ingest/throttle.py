"""Abuse limits shared by the sources (and the dashboard): slower answers to failed logins, and
one way of logging them; sessions per address."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

Session = TypeVar("Session")
MAX_SESSIONS = 256
MAX_SESSIONS_PER_IP = 20
LOGGED_FAILURES_IN_A_ROW = 10  # failed logins from one address logged one by one, then 1 in 100
MAX_SHOWN_CHARACTERS = 64


def printable(text: str) -> str:
    """Client-sent text for a log line or reply: no control characters, bounded."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)[:MAX_SHOWN_CHARACTERS]


class _Failures(NamedTuple):
    in_a_row: int
    last_failure: float
    answer_at: float  # when the last of them is answered


class LoginThrottle:
    """How long to wait before answering a failed login, per remote IP: doubling per failure."""

    def __init__(
        self,
        first_delay_seconds: float = 3.0,  # pyftpdlib's own auth_failed_timeout
        max_delay_seconds: float = 30.0,
        forget_after_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first_delay = first_delay_seconds
        self._max_delay = max_delay_seconds
        self._forget_after = forget_after_seconds
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        # Shared by sources that run in different threads (the FTP IO loop, the HTTP server).
        self._lock = threading.Lock()

    def failed_login(self, ip: str, name: str, service: str, log: logging.Logger) -> float:
        """Record a failed login as `name` from ip, log it in the service's own log, and return
        the delay before answering it (see delay_after_failure). Logged: the first failures in
        a row from the address, then every hundredth, so a guesser's flood does not become the
        whole log."""
        delay, failures = self._record_failure(ip)
        if failures <= LOGGED_FAILURES_IN_A_ROW or failures % 100 == 0:
            log.warning(
                "Failed %s login as %r from %s (%d in a row)",
                service,
                printable(name),
                ip,
                failures,
            )
        return delay

    def delay_after_failure(self, ip: str) -> float:
        """Record one failed login from ip and return the delay before answering it: after
        the answers to the address's earlier failures, so that parallel guesses are answered
        one by one, not side by side."""
        return self._record_failure(ip)[0]

    def _record_failure(self, ip: str) -> tuple[float, int]:
        """The delay before answering, and the failures in a row from ip, this one included
        (counted together: other sessions may fail before the answer goes out)."""
        now = self._clock()
        with self._lock:
            # Forgetting quiet IPs keeps the table small and gives a fixed camera a fresh start.
            self._failures = {
                known: entry
                for known, entry in self._failures.items()
                if now - entry.last_failure < self._forget_after
            }
            earlier = self._failures.get(ip, _Failures(0, now, now))
            count = earlier.in_a_row + 1
            delay = min(self._first_delay * 2.0 ** min(count - 1, 32), self._max_delay)
            answer_at = max(now, earlier.answer_at) + delay
            self._failures[ip] = _Failures(count, now, answer_at)
        return answer_at - now, count

    def forget(self, ip: str) -> None:
        """A successful login from ip: its next failure starts at the first delay again."""
        with self._lock:
            self._failures.pop(ip, None)

    def failures(self, ip: str) -> int:
        """Failed logins in a row from ip that are still remembered."""
        entry = self._failures.get(ip)
        return entry.in_a_row if entry else 0


class SessionCount:
    """Open connections per address and in all, beyond which HTTP push answers 503 (FTP, SMTP
    and alarms make room instead: SessionShares)."""

    def __init__(self, per_ip: int = MAX_SESSIONS_PER_IP, total: int = MAX_SESSIONS) -> None:
        self._per_ip = per_ip
        self._total = total
        self._by_ip: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()  # in a row, per address

    def admit(self, ip: str) -> bool:
        if self._by_ip[ip] >= self._per_ip or self._by_ip.total() >= self._total:
            self._refused[ip] += 1
            return False
        self._by_ip[ip] += 1
        self._refused.pop(ip, None)
        return True

    def refused_in_a_row(self, ip: str) -> int:
        """Sessions refused from ip since it was last admitted: log the first, not the flood."""
        return self._refused[ip]

    def release(self, ip: str) -> None:
        self._by_ip[ip] -= 1
        if self._by_ip[ip] <= 0:
            del self._by_ip[ip]


class SessionShares(Generic[Session]):
    """Open sessions by address, `per_ip` each and `total` in all. When all are taken, a
    newcomer takes the oldest session of the address holding the most (`close` ends it), so
    idle sessions from a few addresses cannot keep a camera out (13 addresses at 20 each are
    more than 256). Used on one server's IO loop only."""

    def __init__(
        self,
        close: Callable[[Session], None],
        per_ip: int = MAX_SESSIONS_PER_IP,
        total: int = MAX_SESSIONS,
    ) -> None:
        self._close = close
        self._per_ip = per_ip
        self._total = total
        self._by_ip: dict[str, list[Session]] = {}  # oldest first
        self._count = 0
        self._refused: Counter[str] = Counter()  # in a row, per address

    def admit(self, ip: str, session: Session) -> bool:
        held = self._by_ip.get(ip, [])
        if len(held) >= self._per_ip or (self._count >= self._total and not self._make_room(ip)):
            self._refused[ip] += 1
            return False
        self._by_ip.setdefault(ip, []).append(session)
        self._count += 1
        self._refused.pop(ip, None)
        return True

    def _make_room(self, ip: str) -> bool:
        biggest_ip, biggest = max(self._by_ip.items(), key=lambda item: len(item[1]))
        if len(biggest) <= len(self._by_ip.get(ip, [])) + 1:  # each holds its share already
            return False
        oldest = biggest[0]
        self.release(biggest_ip, oldest)  # its own release() later finds it gone
        self._close(oldest)
        return True

    def refused_in_a_row(self, ip: str) -> int:
        """Sessions refused from ip since it was last admitted: log the first, not the flood."""
        return self._refused[ip]

    def release(self, ip: str, session: Session) -> None:
        held = self._by_ip.get(ip, [])
        if session in held:
            held.remove(session)
            self._count -= 1
            if not held:
                del self._by_ip[ip]

    def close_all(self) -> None:
        for held in list(self._by_ip.values()):
            for session in list(held):
                self._close(session)
