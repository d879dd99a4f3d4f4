"""Abuse limits shared by the sources: slower answers to failed logins, sessions per address."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

MAX_SESSIONS = 256
MAX_SESSIONS_PER_IP = 20
LOGGED_FAILURES_IN_A_ROW = 10  # failed logins from one address logged one by one, then 1 in 100


def worth_logging(failures_in_a_row: int) -> bool:
    """Whether to log a failed login: the first ones from an address, then every hundredth, so
    a guesser's flood does not become the whole log."""
    return failures_in_a_row <= LOGGED_FAILURES_IN_A_ROW or failures_in_a_row % 100 == 0


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
        self._failures: dict[str, tuple[int, float]] = {}  # ip -> (failures in a row, last one)
        # Shared by sources that run in different threads (the FTP IO loop, the HTTP server).
        self._lock = threading.Lock()

    def delay_after_failure(self, ip: str) -> float:
        """Record one failed login from ip and return the delay before answering it."""
        now = self._clock()
        with self._lock:
            # Forgetting quiet IPs keeps the table small and gives a fixed camera a fresh start.
            self._failures = {
                known: entry
                for known, entry in self._failures.items()
                if now - entry[1] < self._forget_after
            }
            count = self._failures.get(ip, (0, now))[0] + 1
            self._failures[ip] = (count, now)
        return min(self._first_delay * 2.0 ** min(count - 1, 32), self._max_delay)

    def forget(self, ip: str) -> None:
        """A successful login from ip: its next failure starts at the first delay again."""
        with self._lock:
            self._failures.pop(ip, None)

    def failures(self, ip: str) -> int:
        """Failed logins in a row from ip that are still remembered."""
        return self._failures.get(ip, (0, 0.0))[0]


class SessionCount:
    """Open sessions per address and in all, to refuse a flood (SMTP 421, alarms dropped)."""

    def __init__(self) -> None:
        self._by_ip: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()  # in a row, per address

    def admit(self, ip: str) -> bool:
        if self._by_ip[ip] >= MAX_SESSIONS_PER_IP or self._by_ip.total() >= MAX_SESSIONS:
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
