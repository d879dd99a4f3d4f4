"""Moto (the AWS mock, over HTTP on loopback) in its own process, each raw e-mail SES takes
timestamped as moto records it (moto keeps no time of its own): for bench/side_by_side.py."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import HeaderParser
from typing import Any, NamedTuple

from bench import common

CAMERA_IN_SUBJECT = re.compile(r"\b(cam\d+)\b")  # an alert's subject names its camera


def _serve_moto(connection: Any, stop: Any, labels: list[dict[str, Any]], delay: float) -> None:
    """Moto in server mode; sends (monotonic time, subject, size) of each raw e-mail SES
    records."""
    from moto.ses.models import SESBackend

    from harness.aws import SCRIPT, start_moto

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    send_lock = threading.Lock()  # moto serves each request in a thread
    record = SESBackend.send_raw_email

    def send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
        message = record(self, source, destinations, raw_data)
        recorded = time.monotonic()  # one clock for every process on Linux
        headers = HeaderParser(policy=policy.default).parsestr(raw_data, headersonly=True)
        with send_lock:
            connection.send((recorded, str(headers["Subject"]), len(raw_data)))
        return message

    SESBackend.send_raw_email = send_raw_email  # type: ignore[method-assign]
    server, endpoint = start_moto()
    SCRIPT.labels, SCRIPT.delay_seconds = labels, delay
    connection.send((endpoint, os.getpid()))
    while not stop.wait(5.0):
        with SCRIPT.lock:  # the requests hold the pictures: bound the memory
            SCRIPT.requests.clear()
    server.stop()


class Mail(NamedTuple):
    """An alert e-mail as moto recorded it."""

    recorded: float  # time.monotonic()
    camera: str
    size: int  # bytes of the raw message


class MotoMail:
    """The parent's side: a thread keeps every alert e-mail moto records."""

    def __init__(self, connection: Any, endpoint: str) -> None:
        self._connection = connection
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._alerts: list[Mail] = []
        self.others: list[str] = []  # e-mails that are not alerts (error e-mails)
        threading.Thread(target=self._collect, name="moto-mail", daemon=True).start()

    def _collect(self) -> None:
        while True:
            try:
                recorded, subject, size = self._connection.recv()
            except (EOFError, OSError):
                return
            match = CAMERA_IN_SUBJECT.search(subject)
            with self._lock:
                if match:
                    self._alerts.append(Mail(recorded, match.group(1), size))
                else:
                    self.others.append(subject)

    def count(self) -> int:
        with self._lock:
            return len(self._alerts)

    def since(self, mark: int) -> list[Mail]:
        with self._lock:
            return list(self._alerts[mark:])

    def total(self) -> int:
        with self._lock:
            return len(self._alerts) + len(self.others)

    def recorded_by_moto(self) -> int:
        """How many raw e-mails moto holds (its /moto-api/data.json), to check the count."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=60) as answer:
            return len(json.load(answer).get("ses", {}).get("RawMessage", []))


@contextmanager
def moto(labels: list[dict[str, Any]], delay: float) -> Iterator[tuple[MotoMail, int]]:
    """Moto in its own process, this process's AWS environment pointed at it, the sender
    verified; yields the e-mail collector and moto's PID."""
    import boto3

    from harness.aws import REGION, aws_environment

    with common.child_server(_serve_moto, labels, delay) as connection:
        if not connection.poll(common.CHILD_START_SECONDS):
            raise TimeoutError("moto did not start")
        endpoint, pid = connection.recv()
        os.environ.update(aws_environment(endpoint))  # inherited by both systems
        ses = boto3.client("ses", region_name=REGION)
        ses.verify_email_identity(EmailAddress="sender@example.com")
        yield MotoMail(connection, endpoint), pid
