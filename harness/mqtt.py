"""A real Mosquitto broker on a loopback port, and paho clients that record what it delivers."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from harness.smtp import HOST, free_port

USERNAME = "home-assistant"
PASSWORD = "Broker-Passw0rd-2291"
WAIT_SECONDS = 30.0


def system_command(name: str) -> str:
    """Debian installs the broker in /usr/sbin, which is often not on a user's PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-system-packages")
    return found


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    arrived_at: float  # time.monotonic()


class MqttWatcher:
    """A client subscribed to every topic, keeping each message in arrival order."""

    def __init__(self, host: str, port: int, login: tuple[str, str] | None = None) -> None:
        self._messages: list[Received] = []
        self._arrived = threading.Condition()
        subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if login:
            self._client.username_pw_set(*login)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.on_connect = lambda client, *args: client.subscribe("#", qos=1)
        self._client.connect(host, port)
        self._client.loop_start()
        if not subscribed.wait(WAIT_SECONDS):
            self.close()
            pytest.fail(f"could not subscribe on the broker at {host}:{port}")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self._messages.append(
                Received(message.topic, message.payload, message.retain, time.monotonic())
            )
            self._arrived.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._arrived:
            return [message for message in self._messages if message.topic == topic]

    def arrived_after(self, after: float) -> list[Received]:
        with self._arrived:
            return [message for message in self._messages if message.arrived_at > after]

    def wait_for(
        self, topic: str, payload: bytes | str | None = None, *, after: float = 0.0
    ) -> Received:
        """The first message on `topic` (with that payload) that arrived after `after`."""
        wanted = payload.encode() if isinstance(payload, str) else payload

        def found() -> Received | None:
            for message in self._messages:
                if (
                    message.topic == topic
                    and message.arrived_at > after
                    and (wanted is None or message.payload == wanted)
                ):
                    return message
            return None

        with self._arrived:
            if not self._arrived.wait_for(found, WAIT_SECONDS):
                seen = [m.payload[:40] for m in self._messages if m.topic == topic]
                pytest.fail(f"no {wanted!r} on {topic} within {WAIT_SECONDS} s; got {seen}")
            message = found()
            assert message is not None
            return message

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass
class Broker:
    """A mosquitto process; `start()` and `stop()` may be called again to restart it."""

    workdir: Path
    host: str = HOST
    port: int = field(default_factory=free_port)
    login: tuple[str, str] | None = None  # when set, the only user it lets in
    process: subprocess.Popen[bytes] | None = None
    watchers: list[MqttWatcher] = field(default_factory=list)

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = [
            f"listener {self.port} {self.host}",
            # Run as root (tests in containers), it would otherwise switch to user `mosquitto`.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "persistence false",
            "log_dest stderr",
        ]
        if self.login:
            passwords = self.workdir / "passwords"
            username, password = self.login
            subprocess.run(
                [system_command("mosquitto_passwd"), "-b", "-c", passwords, username, password],
                check=True,
                capture_output=True,
            )
            settings += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            settings.append("allow_anonymous true")
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(settings) + "\n")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [system_command("mosquitto"), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mosquitto exited: {self.log_file.read_text(errors='replace')}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT_SECONDS)

    def watch(self) -> MqttWatcher:
        """A new subscriber to everything; retained messages reach it with `retain` set."""
        watcher = MqttWatcher(self.host, self.port, self.login)
        self.watchers.append(watcher)
        return watcher

    def retained(self, topic: str) -> bytes:
        """What the broker keeps for `topic`, as a client connecting now receives it (a client
        that subscribed while it was being published gets it live, unflagged: ask again)."""

        deadline = time.monotonic() + WAIT_SECONDS
        while (message := self.watch().wait_for(topic)).retain is False:
            assert time.monotonic() < deadline, f"{topic} is not retained"
        return message.payload


@contextmanager
def running_broker(workdir: Path, login: tuple[str, str] | None = None) -> Iterator[Broker]:
    broker = Broker(workdir, login=login)
    broker.start()
    try:
        yield broker
    finally:
        for watcher in broker.watchers:
            watcher.close()
        broker.stop()


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that lets anyone in."""
    with running_broker(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def mqtt_login_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that lets in USERNAME / PASSWORD only."""
    with running_broker(tmp_path / "mosquitto", (USERNAME, PASSWORD)) as broker:
        yield broker
