"""Load from a second process, so the service's own process (and its GIL) only serves.

    python -m harness.load_client ftp-storm SPEC.json   # cameras uploading, see FtpStorm
    python -m harness.load_client http SPEC.json        # dashboard and API requests

Each prints one JSON line with what its clients saw; every loop is bounded by the spec's seconds.
"""

from __future__ import annotations

import ftplib
import http.client
import io
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECT_TIMEOUT_SECONDS = 20.0


@dataclass
class Tally:
    """What the clients of one run saw, merged under a lock."""

    replies: Counter[str] = field(default_factory=Counter)  # FTP or HTTP status codes
    accepted: dict[str, list[str]] = field(default_factory=dict)  # camera -> names answered 226
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, reply: str) -> None:
        with self.lock:
            self.replies[reply] += 1

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1

    def as_json(self) -> str:
        with self.lock:
            return json.dumps(
                {"replies": self.replies, "accepted": self.accepted, "errors": self.errors}
            )


def ftp_storm(spec: dict[str, Any]) -> Tally:
    """Cameras that each upload as fast as they can: connect, log in, STOR, QUIT, as XMeye
    firmware does per alarm. A camera told 4xx waits `pause_after_refusal` and tries again."""
    tally = Tally()
    payload = Path(spec["payload"]).read_bytes()
    deadline = time.monotonic() + spec["seconds"]

    def camera(name: str, password: str, source_ip: str) -> None:
        accepted = tally.accepted.setdefault(name, [])
        for number in range(10**6):  # bounded by the deadline long before this
            if time.monotonic() > deadline:
                return
            file_name = f"storm{number:06d}.jpg"
            try:
                with ftplib.FTP(source_address=(source_ip, 0)) as ftp:
                    ftp.connect(spec["host"], spec["port"], timeout=CONNECT_TIMEOUT_SECONDS)
                    ftp.login(name, password)
                    reply = ftp.storbinary(f"STOR {file_name}", io.BytesIO(payload))
                    accepted.append(file_name)  # only this thread appends to its list
                    tally.count(reply[:3])
            except ftplib.error_temp as exc:
                tally.count(str(exc)[:3])
                time.sleep(spec["pause_after_refusal"])
            except (OSError, ftplib.Error) as exc:
                tally.error(exc)
                time.sleep(spec["pause_after_refusal"])

    threads = [
        threading.Thread(target=camera, args=(c["name"], c["password"], c["source_ip"]))
        for c in spec["cameras"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(spec["seconds"] + 2 * CONNECT_TIMEOUT_SECONDS)
    return tally


def http_load(spec: dict[str, Any]) -> Tally:
    """`clients` threads, each requesting `paths` in turn on one keep-alive connection."""
    tally = Tally()
    deadline = time.monotonic() + spec["seconds"]

    def client() -> None:
        connection = http.client.HTTPConnection(
            spec["host"], spec["port"], timeout=CONNECT_TIMEOUT_SECONDS
        )
        for number in range(10**7):  # bounded by the deadline long before this
            if time.monotonic() > deadline:
                break
            try:
                connection.request("GET", spec["paths"][number % len(spec["paths"])])
                response = connection.getresponse()
                response.read()
                tally.count(str(response.status))
            except (OSError, http.client.HTTPException) as exc:
                tally.error(exc)
                connection.close()  # reconnects at the next request
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(spec["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(spec["seconds"] + 2 * CONNECT_TIMEOUT_SECONDS)
    return tally


def main(argv: list[str]) -> int:
    mode, spec_file = argv
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    tally = {"ftp-storm": ftp_storm, "http": http_load}[mode](spec)
    print(tally.as_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
