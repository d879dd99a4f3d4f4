"""Moto in server mode over HTTP (Rekognition, SES, S3), with DetectLabels answers set by the test."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from moto.core.exceptions import JsonRESTError
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.rekognition.responses import RekognitionResponse

REGION = "eu-west-1"


def label(
    name: str,
    confidence: float = 95.0,
    parents: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    boxes: tuple[tuple[float, float, float, float], ...] = (),
) -> dict[str, Any]:
    """A DetectLabels label as Rekognition writes it; boxes are (left, top, width, height)."""
    return {
        "Name": name,
        "Confidence": confidence,
        "Instances": [
            {
                "BoundingBox": {"Left": b[0], "Top": b[1], "Width": b[2], "Height": b[3]},
                "Confidence": confidence,
            }
            for b in boxes
        ],
        "Parents": [{"Name": p} for p in parents],
        "Aliases": [{"Name": a} for a in aliases],
        "Categories": [{"Name": c} for c in categories],
    }


@dataclass
class RekognitionScript:
    """What the patched DetectLabels answers, and every request it saw."""

    labels: list[dict[str, Any]] = field(default_factory=list)
    delay_seconds: float = 0.0
    error: tuple[int, str, str] | None = None  # (HTTP status, code, message)
    answer: Callable[[bytes], list[dict[str, Any]]] | None = None  # per-image labels
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.labels, self.delay_seconds, self.error, self.answer = [], 0.0, None, None
            self.requests.clear()

    @property
    def calls(self) -> int:
        with self.lock:
            return len(self.requests)


SCRIPT = RekognitionScript()


def _patched_detect_labels(self: RekognitionResponse) -> Any:
    import base64

    params = json.loads(self.body or "{}")
    image = base64.b64decode(params.get("Image", {}).get("Bytes", ""))
    with SCRIPT.lock:
        SCRIPT.requests.append({**params, "image": image})
        delay, error, labels, answer = (
            SCRIPT.delay_seconds,
            SCRIPT.error,
            SCRIPT.labels,
            SCRIPT.answer,
        )
    if delay:
        time.sleep(delay)
    if error:
        status, code, message = error
        failure = JsonRESTError(code, message)
        failure.code = status
        raise failure
    chosen = answer(image) if answer else labels
    minimum = float(params.get("MinConfidence", 55))
    kept = [lb for lb in chosen if lb["Confidence"] >= minimum][
        : int(params.get("MaxLabels", 1000))
    ]
    return json.dumps({"Labels": kept, "LabelModelVersion": "3.0"})


@dataclass
class Moto:
    endpoint: str
    rekognition: RekognitionScript

    def sent_emails(self) -> list[EmailMessage]:
        """Every raw e-mail SES accepted, parsed."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as resp:
            data = json.load(resp)
        messages = []
        for item in data.get("ses", {}).get("RawMessage", []):
            raw = item.get("raw_data", "")
            messages.append(message_from_bytes(raw.encode(), policy=policy.default))
        return messages

    def simple_emails(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as resp:
            data = json.load(resp)
        return data.get("ses", {}).get("Message", [])

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        self.rekognition.reset()


def start_moto() -> tuple[ThreadedMotoServer, str]:
    """A moto server on a free loopback port, DetectLabels answering from SCRIPT; and its URL."""
    RekognitionResponse.detect_labels = _patched_detect_labels  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    """One moto server for the session, reachable over HTTP by this process and by subprocesses."""
    original = RekognitionResponse.detect_labels
    server, endpoint = start_moto()
    try:
        yield Moto(endpoint, SCRIPT)
    finally:
        server.stop()
        RekognitionResponse.detect_labels = original  # type: ignore[method-assign]


@pytest.fixture
def aws(moto_server: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A clean moto with boto3 pointed at it (fake credentials) and the sender verified."""
    moto_server.reset()
    for name, value in aws_environment(moto_server.endpoint).items():
        monkeypatch.setenv(name, value)
    import boto3

    ses = boto3.client("ses", region_name=REGION)
    ses.verify_email_identity(EmailAddress="sender@example.com")
    yield moto_server


def aws_environment(endpoint: str) -> dict[str, str]:
    """The environment a service process needs to talk to moto instead of AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLETESTKEY01",
        "AWS_SECRET_ACCESS_KEY": "testsecretkeyvalue0123456789abcdefWXYZ",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "1",
    }


@pytest.fixture
def iam_user(aws: Moto) -> Iterator[Callable[[list[str]], dict[str, str]]]:
    """`iam_user(actions)`: the environment of an IAM user whose policy allows only `actions`,
    with moto enforcing IAM on every request from then on, as AWS does (moto runs in this
    process, so its setting is this process's; it is restored after the test)."""
    import boto3
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin

    from ipcam_analysis.aws import _session as aws_session

    iam = boto3.client("iam", region_name=REGION)
    made: list[str] = []

    def make(actions: list[str]) -> dict[str, str]:
        name = f"user{len(made)}"
        iam.create_user(UserName=name)
        statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
        iam.put_user_policy(
            UserName=name,
            PolicyName="only-these",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        made.append(name)
        # The product keeps one boto3 session (and so one set of credentials) per process.
        aws_session.cache_clear()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        return {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }

    previous = settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        yield make
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
        aws_session.cache_clear()
