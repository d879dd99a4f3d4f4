"""Dashboard passwords: scrypt hashes for the config, and HTTP Basic auth for every page."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ipcam_analysis.errors import ConfigError
from ipcam_analysis.ingest.throttle import LoginThrottle

log = logging.getLogger(__name__)

# 32 MiB and about 0.1 s per check: costly for a guesser, bearable on a Raspberry Pi.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
# Parameters read from a config are bounded so a typo cannot ask for gigabytes.
MAX_N, MAX_R, MAX_P = 2**20, 32, 16
REALM = "ipcam-analysis"
# Credentials already verified are remembered (as keyed digests) so each thumbnail on a page
# does not cost a full scrypt run; the bound keeps a flood of distinct logins from growing it.
MAX_REMEMBERED_LOGINS = 64
REMEMBER_SECONDS = 300.0
MAX_CONCURRENT_CHECKS = 2  # scrypt runs at once, 32 MiB each


@dataclass(frozen=True)
class PasswordHash:
    """A parsed `scrypt$n$r$p$salt$hash` string, as `hash-password` prints it."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Raise ConfigError, written for the user, when `text` is not such a string."""
        parts = text.split("$")
        try:
            if len(parts) != 6 or parts[0] != "scrypt":
                raise ValueError
            n, r, p = (int(part) for part in parts[1:4])
            salt, key = (base64.b64decode(part, validate=True) for part in parts[4:])
        except (ValueError, binascii.Error):
            raise ConfigError(
                "web.password_hash: not a hash made by `ipcam-analysis hash-password`"
                " (expected scrypt$N$r$p$salt$hash)"
            ) from None
        if not (1 < n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
            raise ConfigError(f"web.password_hash: unsupported scrypt parameters N={n} r={r} p={p}")
        if not salt or len(key) < 16:
            raise ConfigError("web.password_hash: the salt or the hash is too short")
        return cls(n, r, p, salt, key)

    def matches(self, password: str) -> bool:
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.key))
        return hmac.compare_digest(candidate, self.key)

    def __str__(self) -> str:
        salt, key = (base64.b64encode(value).decode("ascii") for value in (self.salt, self.key))
        return f"scrypt${self.n}${self.r}${self.p}${salt}${key}"


def hash_password(password: str) -> str:
    """A new salted hash of `password`, to paste into the config as `web.password_hash`."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return str(PasswordHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, key))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL refuses anything above maxmem; this is what these parameters need, plus slack.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


class BasicAuthMiddleware:
    """Asks for the configured login on every request except the paths listed as open.

    Failed logins are answered late and logged as the cameras' are (`LoginThrottle`, per
    address). scrypt runs for one login at a time per address and MAX_CONCURRENT_CHECKS in
    all, so a guesser's parallel requests queue behind each other, not in front of everyone
    else, and cost MAX_CONCURRENT_CHECKS × 32 MiB at most."""

    def __init__(
        self,
        app: ASGIApp,
        username: str,
        password_hash: PasswordHash,
        open_paths: frozenset[str] = frozenset(),
        login_throttle: LoginThrottle | None = None,
    ) -> None:
        self._app = app
        self._username = username.encode("utf-8")
        self._hash = password_hash
        self._open_paths = open_paths
        self._throttle = login_throttle or LoginThrottle()
        self._verified = VerifiedLogins()
        self._checks = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
        self._checking: dict[str, tuple[asyncio.Lock, int]] = {}  # address -> (lock, users)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self._app(scope, receive, send)
            return
        credentials = _basic_credentials(Headers(scope=scope).get("authorization", ""))
        client = scope.get("client")
        address = str(client[0]) if client else ""
        if credentials is not None and await self._accepts(address, *credentials):
            await self._app(scope, receive, send)
            return
        response = PlainTextResponse(
            "Log in to see the dashboard.\n",
            status_code=401,
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )
        await response(scope, receive, send)

    async def _accepts(self, address: str, username: str, password: str) -> bool:
        if self._verified.knows(username, password):
            return True
        async with self._turn_of(address):
            # A page's parallel requests wait here for the first one's check, then pass.
            if self._verified.knows(username, password):
                return True
            async with self._checks:
                # scrypt takes a tenth of a second: off the event loop, so others carry on.
                accepted = await run_in_threadpool(self._verify, username, password)
            if accepted:
                self._verified.remember(username, password)
                self._throttle.forget(address)
                return True
            # Still this address's turn: its next guess waits for this delay to pass.
            await asyncio.sleep(self._throttle.failed_login(address, username, "dashboard", log))
            return False

    @asynccontextmanager
    async def _turn_of(self, address: str) -> AsyncIterator[None]:
        """One password check at a time per address (all on the server's one event loop)."""
        lock, users = self._checking.get(address, (asyncio.Lock(), 0))
        self._checking[address] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._checking[address]
            if users > 1:
                self._checking[address] = (lock, users - 1)
            else:
                del self._checking[address]

    def _verify(self, username: str, password: str) -> bool:
        # Both checks always run, so the answer time does not tell whether the name was right.
        name_ok = hmac.compare_digest(username.encode("utf-8"), self._username)
        password_ok = self._hash.matches(password)
        return name_ok and password_ok


class VerifiedLogins:
    """Logins verified in the last REMEMBER_SECONDS, as digests keyed with a secret of this
    process only: the passwords themselves are never kept, and a page's thumbnails do not
    each cost a scrypt run."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self._until: dict[bytes, float] = {}  # digest -> when it is forgotten
        self._clock = clock

    def knows(self, username: str, password: str) -> bool:
        until = self._until.get(self._digest(username, password))
        return until is not None and self._clock() < until

    def remember(self, username: str, password: str) -> None:
        now = self._clock()
        if len(self._until) >= MAX_REMEMBERED_LOGINS:
            self._until = {known: until for known, until in self._until.items() if until > now}
            if len(self._until) >= MAX_REMEMBERED_LOGINS:
                self._until.clear()
        self._until[self._digest(username, password)] = now + REMEMBER_SECONDS

    def _digest(self, username: str, password: str) -> bytes:
        login = f"{username}\0{password}".encode()
        return hmac.new(self._key, login, hashlib.sha256).digest()


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None
