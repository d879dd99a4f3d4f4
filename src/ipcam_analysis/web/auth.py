"""Dashboard passwords: scrypt hashes for the config, and HTTP Basic auth for every page."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ipcam_analysis.errors import ConfigError

# 32 MiB and about 0.1 s per check: costly for a guesser, bearable on a Raspberry Pi.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
# Parameters read from a config are bounded so a typo cannot ask for gigabytes.
MAX_N, MAX_R, MAX_P = 2**20, 32, 16
REALM = "ipcam-analysis"
# Credentials already verified are remembered (as keyed digests) so each thumbnail on a page
# does not cost a full scrypt run; the bound keeps a flood of distinct logins from growing it.
MAX_REMEMBERED_LOGINS = 64


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
    """Asks for the configured login on every request except the paths listed as open."""

    def __init__(
        self,
        app: ASGIApp,
        username: str,
        password_hash: PasswordHash,
        open_paths: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._username = username.encode("utf-8")
        self._hash = password_hash
        self._open_paths = open_paths
        self._digest_key = secrets.token_bytes(32)
        self._remembered: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self._app(scope, receive, send)
            return
        credentials = _basic_credentials(Headers(scope=scope).get("authorization", ""))
        if credentials is not None and await self._accepts(*credentials):
            await self._app(scope, receive, send)
            return
        response = PlainTextResponse(
            "Log in to see the dashboard.\n",
            status_code=401,
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )
        await response(scope, receive, send)

    async def _accepts(self, username: str, password: str) -> bool:
        digest = hmac.new(
            self._digest_key, f"{username}\0{password}".encode(), hashlib.sha256
        ).digest()
        if digest in self._remembered:
            return True
        # scrypt takes a tenth of a second: off the event loop, so other requests carry on.
        if not await run_in_threadpool(self._verify, username, password):
            return False
        if len(self._remembered) >= MAX_REMEMBERED_LOGINS:
            self._remembered.clear()
        self._remembered.add(digest)
        return True

    def _verify(self, username: str, password: str) -> bool:
        # Both checks always run, so the answer time does not tell whether the name was right.
        name_ok = hmac.compare_digest(username.encode("utf-8"), self._username)
        password_ok = self._hash.matches(password)
        return name_ok and password_ok


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
