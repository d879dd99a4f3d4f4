"""Shared pieces of the benchmarks: machine facts, snapshots, a fake detector, servers in child
processes (SMTP sink, moto), FTP cameras, the service in or out of process, statistics, output.

A benchmark script adds the repository root and src to sys.path, then imports this module
(`from bench import common`).
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import ftplib
import http.client
import io
import json
import logging
import multiprocessing
import os
import platform
import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageOps

from ipcam_analysis.config import AppConfig
from ipcam_analysis.detect import Detector
from ipcam_analysis.service.app import Service, build_service
from ipcam_analysis.service.logsetup import remove_logging
from ipcam_analysis.settings import config_folder
from ipcam_analysis.store import DATABASE_FILE
from ipcam_analysis.values import Box, Detection, Instance, Label, Snapshot, WatchedLabels

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "eval" / "images"
MODEL_CACHE = ROOT / "data" / "models"  # the converted local model, when `make run` made it
PERSON_PHOTO = "opencv_vtest_f0000.jpg"  # pedestrians seen from above, as a camera sees them
SIZES = {"320x240": (320, 240), "800x488": (800, 488), "1920x1080": (1920, 1080)}
CAMERA_PASSWORD = "bench-camera-password"
LOOPBACK = "127.0.0.1"
SPAWN = multiprocessing.get_context("spawn")
CHILD_START_SECONDS = 120.0  # a spawned child imports the package before it answers
FTP_TIMEOUT_SECONDS = 30.0


def exit_on_sigterm() -> None:
    """SIGTERM ends a benchmark as Ctrl+C does, so that its servers and cameras stop with it."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


# ---- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def reference_loop_ms() -> float:
    """A fixed pure-Python loop, timed: the same machine was up to 1.5× slower at times (a
    shared VM), which `uptime` does not show; JSON files keep this beside their figures."""
    started = time.perf_counter()
    total = 0
    for number in range(1_000_000):
        total += number % 7
    return round((time.perf_counter() - started) * 1000, 1)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat: two readings give how
    busy the machine was in between, whoever used it."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


# ---- statistics and output -----------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p95, p99, max and mean (nearest-rank percentiles) of some milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def rank(percent: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, round(len(ordered) * percent / 100) - 1))]

    return {
        "n": len(ordered),
        "p50": round(rank(50), 2),
        "p90": round(rank(90), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        first, *rest = row
        print(
            "  ".join(
                [
                    first.ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)),
                ]
            )
        )


def _cell(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def write_results(name: str, payload: dict[str, Any], output: Path | None) -> Path:
    """The results as JSON (default bench/results/NAME-TIME.json), with the machine and command."""
    report = {
        "benchmark": name,
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "machine": machine(),
        "reference_loop_ms_at_end": reference_loop_ms(),
        **payload,
    }
    path = output or RESULTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"Written to {path}", file=sys.stderr)
    return path


def parse_size(text: str) -> tuple[int, int]:
    """`800x488` as (800, 488)."""
    width, _, height = text.partition("x")
    return int(width), int(height)


# ---- snapshots and the fake detector -------------------------------------------------------


def snapshot_jpeg(size: tuple[int, int], photo: str = PERSON_PHOTO, quality: int = 85) -> bytes:
    """An eval photo cropped to the size's aspect and resized to it, as a camera would send it."""
    with Image.open(IMAGES / photo) as original:
        image = ImageOps.fit(original.convert("RGB"), size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


# One person with a box: every upload alerts, so every stage (annotate, e-mail, store) runs.
PERSON = Label("Person", 96.0, (), ("Human",), (), (Instance(Box(0.42, 0.30, 0.12, 0.45), 96.0),))


class FakeDetector:
    """Answers after a fixed latency, at the detector interface (no image work at all): PERSON,
    or nothing with `alerts=False`."""

    def __init__(self, kind: str, latency_seconds: float, *, alerts: bool = True) -> None:
        self.kind = kind
        self._latency = latency_seconds
        self._labels = (PERSON,) if alerts else ()

    def detect(self, snapshot: Snapshot, watched: WatchedLabels | None = None) -> Detection:
        started = time.perf_counter()
        if self._latency:
            time.sleep(self._latency)
        return Detection(self.kind, self._labels, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Nothing to free."""


@dataclass(frozen=True)
class FakeDetectors:
    """A `make_detector` for Service: every kind becomes a FakeDetector of that latency (a class,
    not a closure, so worker processes can be handed it)."""

    latency_seconds: float
    alerts: bool = True

    def __call__(self, kind: str) -> Detector:
        return FakeDetector(kind, self.latency_seconds, alerts=self.alerts)


# ---- servers in child processes ------------------------------------------------------------


@contextmanager
def child_server(target: Callable[..., None], *args: Any) -> Iterator[Connection]:
    """Run `target(connection, stop, *args)` in a spawned process, so that the server's work does
    not share the service's interpreter lock; yields the parent's end of the connection."""
    parent_end, child_end = SPAWN.Pipe()
    stop = SPAWN.Event()
    process = SPAWN.Process(target=target, args=(child_end, stop, *args), daemon=True)
    process.start()
    try:
        yield parent_end
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _serve_timing_sink(connection: Connection, stop: Any, port: int) -> None:
    """A real SMTP server (aiosmtpd) that sends each message's arrival time (monotonic, at DATA:
    the whole message received) and size to the parent, and keeps nothing."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            arrived = time.monotonic()
            connection.send((arrived, len(envelope.original_content or envelope.content)))
            return "250 Message accepted"

    controller = Controller(Handler(), hostname=LOOPBACK, port=port, ready_timeout=30)
    controller.start()
    connection.send(("ready", port))
    stop.wait()
    controller.stop()


class MailArrivals:
    """The parent's view of the timing sink: waits for the next messages' arrival times."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        ready, self.port = self._receive(CHILD_START_SECONDS)
        assert ready == "ready"
        self.count = 0

    def _receive(self, timeout: float) -> tuple[Any, Any]:
        if not self._connection.poll(timeout):
            raise TimeoutError(f"no message reached the SMTP sink within {timeout:.0f} s")
        return self._connection.recv()

    def next_arrival(self, timeout: float = 60.0) -> float:
        """The monotonic time the next message arrived."""
        arrived, _size = self._receive(timeout)
        self.count += 1
        return float(arrived)

    def drain(self) -> int:
        """Count what arrived without waiting; returns the total so far. Call it often: the
        sink blocks (and with it the service's e-mails) once 278 arrivals wait in the pipe."""
        while self._connection.poll(0):
            self._connection.recv()
            self.count += 1
        return self.count


@contextmanager
def timing_sink() -> Iterator[MailArrivals]:
    """The SMTP sink in its own process, on a loopback port."""
    with child_server(_serve_timing_sink, free_port()) as connection:
        yield MailArrivals(connection)


def _serve_moto(connection: Connection, stop: Any, labels: list[dict[str, Any]]) -> None:
    """Moto in server mode, DetectLabels answering `labels`; forgets requests to bound memory."""
    from harness.aws import SCRIPT, start_moto

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server, endpoint = start_moto()
    SCRIPT.labels = labels
    connection.send(endpoint)
    while not stop.wait(5.0):
        with SCRIPT.lock:
            SCRIPT.requests.clear()
    server.stop()


@contextmanager
def moto_rekognition(labels: list[dict[str, Any]]) -> Iterator[str]:
    """Moto (the AWS mock, over HTTP on loopback) in its own process; sets this process's AWS
    environment to it and yields its URL. It stands in for Rekognition: no Amazon figure."""
    from harness.aws import aws_environment

    with child_server(_serve_moto, labels) as connection:
        if not connection.poll(CHILD_START_SECONDS):
            raise TimeoutError("moto did not start")
        endpoint = connection.recv()
        saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
        os.environ.update(aws_environment(endpoint))
        try:
            yield endpoint
        finally:
            for name in aws_environment(endpoint):
                os.environ.pop(name, None)
            os.environ.update(saved)


def rekognition_person() -> list[dict[str, Any]]:
    """The DetectLabels answer moto gives: PERSON, as Rekognition writes it."""
    from harness.aws import label

    box = PERSON.instances[0].box
    return [label("Person", 96.0, boxes=((box.left, box.top, box.width, box.height),))]


# ---- the service ---------------------------------------------------------------------------


def camera_names(count: int) -> list[str]:
    return [f"cam{number:02d}" for number in range(1, count + 1)]


def service_settings(
    work: Path,
    *,
    cameras: int,
    workers: int,
    detector: dict[str, Any],
    smtp_port: int | None,
    ftp_port: int = 0,
    web: bool = False,
    worker_processes: int = 1,
    sections: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config as plain data: cameras cam01.., uploads removed, e-mail to the sink when given;
    `sections` adds top-level sections (http_ingest, ...) or keys to one (ftp_server.tls)."""
    email: dict[str, Any] = {"transport": "none"}
    if smtp_port is not None:
        email = {
            "transport": "smtp",
            "sender_email": "bench@example.com",
            "recipients": ["owner@example.com"],
            "smtp": {"host": LOOPBACK, "port": smtp_port, "security": "none"},
        }
    settings: dict[str, Any] = {
        "labels": ["Person", "Vehicle"],
        "aws_region": "eu-west-1",
        "data_dir": str(work / "data"),
        "workers": workers,
        "worker_processes": worker_processes,
        "detector": detector,
        "email": email,
        "ftp_server": {
            "root_dir": str(work / "ftp"),
            "host": LOOPBACK,
            "port": ftp_port,
            "remove_files": True,
            "users": dict.fromkeys(camera_names(cameras), CAMERA_PASSWORD),
        },
        "web": {"enabled": web, "port": 0},
    }
    for name, keys in (sections or {}).items():
        settings[name] = {**settings.get(name, {}), **keys}
    return settings


def seed_model_cache(work: Path) -> None:
    """Copy the converted local model into the service's data folder, as after its first start."""
    if MODEL_CACHE.is_dir():
        shutil.copytree(MODEL_CACHE, work / "data" / "models", dirs_exist_ok=True)


@contextmanager
def running_service(
    settings: dict[str, Any], work: Path, make_detector: Callable[[str], Detector] | None = None
) -> Iterator[Service]:
    """The service in this process, logging at INFO to its data folder as the CLI sets it up."""
    config = AppConfig.model_validate(settings, context=config_folder(work))
    service = build_service(config, make_detector=make_detector)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        remove_logging()


def write_config(settings: dict[str, Any], work: Path) -> Path:
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.01) -> Any:
    """Poll until the condition holds; raises TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def upload_states(database: Path) -> dict[str, int]:
    """How many uploads are in each state (pending, working, done), read from the service's
    database by a separate read-only connection."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute("SELECT state, COUNT(*) FROM uploads GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def queue_counts(database: Path) -> tuple[int, int]:
    """(unfinished, done) uploads (see upload_states)."""
    states = upload_states(database)
    done = states.get("done", 0)
    return sum(states.values()) - done, done


def database_of(work: Path) -> Path:
    return work / "data" / DATABASE_FILE


# Uploads finished since a moment: when the source received each one (ISO text, taken as the
# file is complete, just before its row commits and the camera's 226/201/250) and when a worker
# closed it (epoch seconds, after the notifiers' servers accepted the alert and the event was
# recorded). Both come from the same machine's clock.
FINISHED_SINCE_SQL = (
    "SELECT received_at, finished_at FROM uploads"
    " WHERE state = 'done' AND finished_at IS NOT NULL AND finished_at >= $1"
)


def epoch_of(received_at: str) -> float:
    """The uploads table's received_at (ISO 8601 with its offset) as epoch seconds."""
    return datetime.fromisoformat(received_at).timestamp()


def finish_latencies(rows: Sequence[Sequence[Any]]) -> list[tuple[float, float]]:
    """(finished_at, milliseconds from received to finished) of FINISHED_SINCE_SQL's rows."""
    return [
        (float(finished), (float(finished) - epoch_of(received)) * 1000)
        for received, finished in rows
    ]


# ---- the cameras ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """One FTP user, connecting from its own loopback address as a real camera has its own IP
    (the server allows 20 sessions per address)."""

    name: str
    source_ip: str


def cameras(count: int) -> list[Camera]:
    return [
        Camera(name, f"127.0.{1 + index // 250}.{2 + index % 250}")
        for index, name in enumerate(camera_names(count))
    ]


def upload_once(address: tuple[str, int], camera: Camera, data: bytes, remote_name: str) -> float:
    """One camera upload (connect, log in, passive STOR, QUIT); returns the monotonic time at
    which the client read the server's `226 Transfer complete`."""
    return ftp_upload(address, camera, data, remote_name)[0]


def ftp_upload(
    address: tuple[str, int], camera: Camera, data: bytes, remote_name: str, *, tls: bool = False
) -> tuple[float, float]:
    """One FTP (with `tls`: FTPS, PROT P) upload: (monotonic time of the 226, milliseconds from
    sending STOR to reading the 226; the session's set-up and login are not counted)."""
    if tls:
        # The service's self-signed certificate: a benchmark checks speed, not the chain (and
        # loading the system's CAs at every upload would time the client, not the server).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        ftp: ftplib.FTP = ftplib.FTP_TLS(
            timeout=FTP_TIMEOUT_SECONDS, source_address=(camera.source_ip, 0), context=context
        )
    else:
        ftp = ftplib.FTP(timeout=FTP_TIMEOUT_SECONDS, source_address=(camera.source_ip, 0))
    try:
        ftp.connect(*address)
        ftp.login(camera.name, CAMERA_PASSWORD)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        sent = time.monotonic()
        ftp.storbinary(f"STOR {remote_name}", io.BytesIO(data))  # returns on 226
        accepted = time.monotonic()
        ftp.quit()
    finally:
        ftp.close()
    return accepted, (accepted - sent) * 1000


def http_upload(
    address: tuple[str, int], camera: Camera, data: bytes, remote_name: str
) -> tuple[float, float]:
    """One HTTP push on a new connection, as a camera sends it (POST /upload): (monotonic time of
    the 201, milliseconds from sending the request to reading the 201)."""
    login = base64.b64encode(f"{camera.name}:{CAMERA_PASSWORD}".encode()).decode()
    headers = {"Content-Type": "image/jpeg", "Authorization": f"Basic {login}"}
    connection = http.client.HTTPConnection(
        *address, timeout=FTP_TIMEOUT_SECONDS, source_address=(camera.source_ip, 0)
    )
    try:
        sent = time.monotonic()
        connection.request("POST", f"/upload?name={remote_name}", data, headers)
        answer = connection.getresponse()
        body = answer.read()
        accepted = time.monotonic()
    finally:
        connection.close()
    if answer.status != 201:
        raise OSError(f"HTTP {answer.status}: {body.decode(errors='replace').strip()}")
    return accepted, (accepted - sent) * 1000


def smtp_upload(
    address: tuple[str, int], camera: Camera, data: bytes, remote_name: str
) -> tuple[float, float]:
    """One e-mail as a camera sends it (connect, EHLO, AUTH LOGIN without TLS, the snapshot
    attached, QUIT): (monotonic time of the 250, milliseconds from sending DATA to reading it)."""
    message = EmailMessage()
    message["From"], message["To"] = f"{camera.name}@cameras.example", "owner@example.com"
    message["Subject"] = "Alarm event: Motion Detection"
    message.set_content("Alarm Event: Motion Detection\nAlarm Input Channel: 1\n")
    message.add_attachment(data, "image", "jpeg", filename=remote_name)
    raw = message.as_bytes(policy=email.policy.SMTP)
    client = smtplib.SMTP(timeout=FTP_TIMEOUT_SECONDS, source_address=(camera.source_ip, 0))
    try:
        client.connect(*address)
        client.ehlo("camera")
        client.esmtp_features["auth"] = "LOGIN"
        client.login(camera.name, CAMERA_PASSWORD)
        client.mail(str(message["From"]))
        client.rcpt(str(message["To"]))
        sent = time.monotonic()
        code, reply = client.data(raw)
        accepted = time.monotonic()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        client.quit()
    finally:
        client.close()
    return accepted, (accepted - sent) * 1000


# How a camera sends one snapshot over each source, by the source's kind.
UPLOADERS: dict[str, Callable[[tuple[str, int], Camera, bytes, str], tuple[float, float]]] = {
    "ftp": ftp_upload,
    "ftps": lambda *args: ftp_upload(*args, tls=True),
    "http": http_upload,
    "smtp": smtp_upload,
}


RemoteUpload = Callable[[str], float]


def _serve_uploads(
    connection: Connection, stop: Any, address: tuple[str, int], camera: Camera, data: bytes
) -> None:
    """A child process: uploads `data` under each name the parent sends, answers the 226 time."""
    connection.send("ready")
    while not stop.is_set():
        if connection.poll(0.1):
            connection.send(upload_once(address, camera, data, connection.recv()))


@contextmanager
def remote_camera(address: tuple[str, int], camera: Camera, data: bytes) -> Iterator[RemoteUpload]:
    """A camera in its own process (it must not share the service's interpreter lock): yields
    `upload(remote_name)`, which returns the monotonic time of the camera's 226."""
    with child_server(_serve_uploads, address, camera, data) as connection:
        if not connection.poll(CHILD_START_SECONDS):
            raise TimeoutError("the camera process did not start")
        connection.recv()

        def upload(remote_name: str) -> float:
            connection.send(remote_name)
            if not connection.poll(FTP_TIMEOUT_SECONDS * 2):
                raise TimeoutError(f"the camera did not finish uploading {remote_name}")
            return float(connection.recv())

        yield upload


@dataclass
class UploadRun:
    """What N cameras achieved: the 226 times, failures, and the measured window."""

    started: float
    seconds: float
    accepted: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # sending to the 226/201

    def accepted_per_second(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0


def _upload_group(
    connection: Connection,
    ready: Any,
    address: tuple[str, int],
    group: list[Camera],
    data: bytes,
    seconds: float,
    per_camera: int,
    interval: float,
    kind: str,
    offsets: list[float],
) -> None:
    """A child process: one thread per camera uploading until the deadline or its count, each
    camera's first upload `offsets[i]` seconds after the start."""
    ready.wait(CHILD_START_SECONDS)
    started = time.monotonic()
    deadline = started + seconds
    accepted: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    upload = UPLOADERS[kind]

    def camera_loop(camera: Camera, offset: float) -> None:
        for number in range(per_camera):
            slot = started + offset + number * interval
            if slot > time.monotonic():
                time.sleep(slot - time.monotonic())
            if time.monotonic() >= deadline:
                return
            try:
                at, latency = upload(address, camera, data, f"{camera.name}-{number:06d}.jpg")
            except (OSError, ftplib.Error, smtplib.SMTPException) as exc:
                with lock:
                    errors.append(f"{camera.name}: {exc}")
                time.sleep(0.05)  # a refused session must not spin
                continue
            with lock:
                accepted.append(at)
                latencies.append(latency)

    threads = [
        threading.Thread(target=camera_loop, args=(c, offset), daemon=True)
        for c, offset in zip(group, offsets, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + FTP_TIMEOUT_SECONDS * 2)
    connection.send((accepted, errors, latencies))


def run_cameras(
    address: tuple[str, int],
    group: Sequence[Camera],
    data: bytes,
    *,
    seconds: float,
    per_camera: int,
    interval: float = 0.0,
    processes: int = 2,
    on_start: Callable[[float], None] | None = None,
    kind: str = "ftp",
    spread: bool = False,
) -> UploadRun:
    """Cameras uploading `data` concurrently from child processes (as cameras are other
    machines, they do not share the service's interpreter lock), over `kind` (an UPLOADERS
    key): each one every `interval` seconds (0: as fast as the server answers), at most
    `per_camera` times, for `seconds`. With `spread`, the cameras' first uploads are spread
    evenly over the first interval (a steady rate, as independent cameras give), rather than
    all at once."""
    processes = max(1, min(processes, len(group)))
    ready = SPAWN.Barrier(processes + 1)
    children = []
    step = interval / len(group) if spread else 0.0
    for index in range(processes):
        parent_end, child_end = SPAWN.Pipe()
        args = (child_end, ready, address, list(group[index::processes]), data, seconds)
        offsets = [step * number for number in range(index, len(group), processes)]
        process = SPAWN.Process(
            target=_upload_group, args=(*args, per_camera, interval, kind, offsets), daemon=True
        )
        process.start()
        children.append((process, parent_end))
    ready.wait(CHILD_START_SECONDS)
    run = UploadRun(started=time.monotonic(), seconds=seconds)
    if on_start is not None:
        on_start(run.started)
    for process, connection in children:
        if connection.poll(seconds + FTP_TIMEOUT_SECONDS * 3):
            accepted, errors, latencies = connection.recv()
            run.accepted += accepted
            run.errors += errors
            run.latencies_ms += latencies
        else:
            run.errors.append("an upload process did not report")
        process.join(10)
        if process.is_alive():
            process.terminate()
    run.accepted.sort()
    return run


class Sampler:
    """Calls `sample()` every `every` seconds in a thread, keeping (seconds since start, value)."""

    def __init__(self, sample: Callable[[], Any], every: float, limit: int = 100_000) -> None:
        self._sample = sample
        self._every = every
        self._limit = limit
        self._stop = threading.Event()
        self.started = time.monotonic()
        self.samples: list[tuple[float, Any]] = []
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self._every + 30)

    def _run(self) -> None:
        while len(self.samples) < self._limit:
            self.samples.append((round(time.monotonic() - self.started, 2), self._sample()))
            if self._stop.wait(self._every):
                return


# ---- a real service process ----------------------------------------------------------------


def process_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS), or its peak so far (VmHWM), in MB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} for process {pid}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (from /proc/PID/task/*/children)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids += process_tree(int(child))
    return pids


def thread_count(pid: int) -> int:
    """The threads of a process (0 once it ended)."""
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return 0


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """Seconds on a CPU (user + system, threads that ended included) and seconds runnable but
    waiting for a CPU (the cores were busy; the threads still running only: a lower bound),
    summed over the process and its descendants (/proc/PID/stat, /proc/PID/task/TID/schedstat)."""
    on_cpu = waiting = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):  # it ended meanwhile
            on_cpu += process_cpu_seconds(member)
        for task in Path(f"/proc/{member}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                waiting += int((task / "schedstat").read_text().split()[1]) / 1e9
    return on_cpu, waiting


@contextmanager
def service_process(
    settings: dict[str, Any], work: Path, wrapper: Sequence[str] = ()
) -> Iterator[int]:
    """`ipcam-analysis -c config.yaml` as its own process (the console script's main), under
    `wrapper` (such as `prlimit --nofile=1024:1024 --`); yields its PID once the FTP port
    answers. Needs a fixed `ftp_server.port` in the settings."""
    from harness.service import ServiceProcess

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    service = ServiceProcess(["-c", str(write_config(settings, work))], work, env, wrapper)
    address = (LOOPBACK, settings["ftp_server"]["port"])

    def listening() -> bool:
        if service.process.poll() is not None:
            raise RuntimeError(f"the service exited:\n{service.output}")
        try:
            socket.create_connection(address, timeout=1).close()
        except OSError:
            return False
        return True

    try:
        wait_for(listening, CHILD_START_SECONDS, "the service's FTP listener", poll=0.1)
        yield service.process.pid
    finally:
        if service.process.poll() is None:
            service.terminate()


@dataclass(frozen=True)
class Started:
    """A running service process and what the benchmark needs of it."""

    pid: int
    ftp_port: int
    mails: MailArrivals
    database: Path


@contextmanager
def _service_folder(
    detector: str, workers: int, cameras_count: int, *, moto: bool, **extras: Any
) -> Iterator[tuple[Path, dict[str, Any], MailArrivals]]:
    """A temporary work folder, the timing SMTP sink and (with `moto`) moto each in its own
    process, and the service's settings for them; `extras` go to service_settings."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-service-")))
        mails = stack.enter_context(timing_sink())
        if moto:
            stack.enter_context(moto_rekognition(rekognition_person()))
        if detector != "rekognition":  # only the local and cascade detectors read the model
            seed_model_cache(work)
        yield (
            work,
            service_settings(
                work,
                cameras=cameras_count,
                workers=workers,
                detector={"type": detector},
                smtp_port=mails.port,
                **extras,
            ),
            mails,
        )


@contextmanager
def in_process_service(
    detector: str,
    workers: int,
    cameras_count: int,
    make_detector: Callable[[str], Detector] | None = None,
    *,
    moto: bool = False,
    worker_processes: int = 1,
    sections: dict[str, Any] | None = None,
) -> Iterator[tuple[Service, MailArrivals]]:
    """The service in this process (see running_service), with the timing SMTP sink and, with
    `moto`, moto each in its own process; `sections` go into its config (see service_settings)."""
    folder = _service_folder(
        detector,
        workers,
        cameras_count,
        moto=moto,
        sections=sections,
        worker_processes=worker_processes,
    )
    with (
        folder as (work, settings, mails),
        running_service(settings, work, make_detector) as service,
    ):
        yield service, mails


@contextmanager
def started_service_process(detector: str, workers: int, cameras_count: int) -> Iterator[Started]:
    """The service as its own process (dashboard on), with moto (unless the detector is local)
    and the timing SMTP sink each in its own process."""
    with (
        _service_folder(
            detector,
            workers,
            cameras_count,
            moto=detector != "local",
            ftp_port=free_port(),
            web=True,
        ) as (work, settings, mails),
        service_process(settings, work) as pid,
    ):
        yield Started(pid, settings["ftp_server"]["port"], mails, database_of(work))


def upload_and_drain(
    service: Started,
    data: bytes,
    cameras_count: int,
    *,
    seconds: float,
    per_camera: int,
    interval: float,
    drain_timeout: float,
    drain_poll: float,
) -> UploadRun:
    """Cameras upload to the service process (see run_cameras), then its queue empties: the
    images it processed are then all the uploads it accepted."""
    run = run_cameras(
        (LOOPBACK, service.ftp_port),
        cameras(cameras_count),
        data,
        seconds=seconds,
        per_camera=per_camera,
        interval=interval,
    )
    wait_for(
        lambda: queue_counts(service.database)[0] == 0,
        drain_timeout,
        "the queue to drain",
        drain_poll,
    )
    return run
