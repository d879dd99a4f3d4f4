"""A stranger's idle connections cannot take a camera's way in away: the real service, run with
a small open-files limit, flooded with idle connections to its HTTP port from the test."""

from __future__ import annotations

import ftplib
import io
import resource
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from harness.aws import Moto
from harness.ftp import camera_directory
from harness.intake import collecting_intake
from harness.mail_camera import camera_mail
from harness.service import (
    DATA,
    PASSWORDS,
    ServiceProcess,
    base_config,
    free_port,
    service_environment,
    upload,
    wait_until,
    write_config,
)
from ipcam_analysis.cli import EXIT_FAILURE
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.http_guard import make_guarded_protocol
from ipcam_analysis.ingest.throttle import MAX_SESSIONS, MAX_SESSIONS_PER_IP, LoginThrottle
from ipcam_analysis.net.asgi_server import AsgiServer
from tests.test_ingest_http import CAMERAS

JPEG = (DATA / "darknet_person.jpg").read_bytes()
LIMIT = 256  # the service's open files: a flood of FLOOD connections is more than it can hold
FLOOD = 300
# Flood sources: each address stays within the HTTP listener's share of connections per address.
FLOOD_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 32)]
GUESS_DELAY = 3.0  # seconds before a wrong password is answered


@pytest.fixture(autouse=True)
def enough_files_for_the_flood() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * FLOOD:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * FLOOD), hard))


def _started_or_gone(process: ServiceProcess) -> bool:
    return "IP Camera Analysis started" in process.output or process.process.poll() is not None


class Listeners:
    """The ports of a service started with FTP (FTPS optional), SMTP and HTTP push."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ftp: tuple[str, int] = ("127.0.0.1", 0)
        self._choose_ports()
        self.log = tmp_path / "data" / "ipcam_analysis.log"
        self.refused = ""

    def _choose_ports(self) -> None:
        self.http, self.smtp, self.web = free_port(), free_port(), free_port()
        self.config = base_config(
            self.tmp_path,
            ftp_server={"tls": {"mode": "optional"}},
            http_ingest={"enabled": True, "host": "127.0.0.1", "port": self.http},
            smtp_server={"enabled": True, "host": "127.0.0.1", "port": self.smtp},
            web={"host": "127.0.0.1", "port": self.web},
        )
        self.path = write_config(self.tmp_path, self.config)

    def start(self, service_process, aws: Moto, nofile: str, **env: str) -> ServiceProcess:
        wrapper = ["prlimit", f"--nofile={nofile}", "--"]
        for _ in range(3):
            process = service_process(
                ["-c", str(self.path), "-n"], service_environment(aws, **env), wrapper=wrapper
            )
            self.ftp = process.address()
            # Started: listening, and done taking over what an earlier run left; or gone.
            wait_until(lambda p=process: _started_or_gone(p), what="the start")
            if "IP Camera Analysis started" in process.output:
                return process
            if "already in use" not in process.output:
                raise AssertionError(f"service exited early:\n{process.output}")
            # Another test took a port free_port() chose before the service could bind it.
            self._choose_ports()
        raise AssertionError(f"no free ports in three tries:\n{process.output}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def ftp_upload(self, name: str) -> None:
        upload(self.ftp, "cam01", JPEG, name)

    def ftps_upload(self, name: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with ftplib.FTP_TLS(context=context) as ftp:
            ftp.connect(*self.ftp, timeout=10)
            ftp.login("cam02", PASSWORDS["cam02"])
            ftp.prot_p()
            ftp.storbinary(f"STOR {name}", io.BytesIO(JPEG))

    def smtp_upload(self, name: str) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=10) as client:
            client.login("cam01", PASSWORDS["cam01"])
            client.send_message(camera_mail([(name, JPEG)]))

    def http_upload(self, name: str) -> None:
        status = post_jpeg(self.http, PASSWORDS["cam01"], name)
        if status != 201:
            raise httpx.HTTPError(f"answered {status}")

    def port(self, listener: str) -> int:
        ports = {"ftp": self.ftp[1], "smtp": self.smtp, "http": self.http, "dashboard": self.web}
        return ports[listener]

    def every_source_takes(self, tag: str) -> bool:
        """Whether a camera gets through each way; False at the first that does not, which
        `refused` then names."""
        ways = {
            "ftp": self.ftp_upload,
            "ftps": self.ftps_upload,
            "smtp": self.smtp_upload,
            "http": self.http_upload,
        }
        for way, send in ways.items():
            try:
                send(f"{tag}-{way}.jpg")
            except (OSError, EOFError, ftplib.Error, smtplib.SMTPException, httpx.HTTPError) as exc:
                self.refused = f"{way}: {exc!r}"
                return False
        try:
            httpx.get(f"http://127.0.0.1:{self.web}/healthz", timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            self.refused = f"dashboard: {exc!r}"
            return False
        return True

    def wait_until_every_source_takes(self, tag: str) -> None:
        try:
            wait_until(lambda: self.every_source_takes(tag), 120, f"uploads each way ({tag})")
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}; the last refused: {self.refused}") from None


def post_jpeg(port: int, password: str, name: str = "snapshot.jpg") -> int:
    """The HTTP status camera cam01's upload from 127.0.0.1 gets."""
    answer = httpx.post(
        f"http://127.0.0.1:{port}/upload?name={name}",
        content=JPEG,
        headers={"Content-Type": "image/jpeg"},
        auth=("cam01", password),
        timeout=30,
    )
    return answer.status_code


@contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections to the port that never send a byte, closed on leaving."""
    with ExitStack() as held:
        opened = []
        for number in range(count):
            sock = held.enter_context(socket.socket())
            sock.settimeout(5)
            sock.bind((FLOOD_ADDRESSES[number % len(FLOOD_ADDRESSES)], 0))
            with suppress(OSError):  # past the listen backlog, a connection may not complete
                sock.connect(("127.0.0.1", port))
                opened.append(sock)
        yield opened


def open_files(process: ServiceProcess) -> int:
    return len(list(Path(f"/proc/{process.process.pid}/fd").iterdir()))


def knock(address: tuple[str, int]) -> None:
    """A camera's connection attempt that the service must accept (or fail to) meanwhile."""
    with suppress(OSError), socket.create_connection(address, timeout=5) as sock:
        sock.recv(100)


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
@pytest.mark.parametrize("flooded", ["http", "ftp", "smtp", "dashboard"])
def test_a_flood_past_the_limit_leaves_every_listener_working(
    tmp_path: Path, aws: Moto, service_process: Any, flooded: str
) -> None:
    listeners = Listeners(tmp_path)
    process = listeners.start(service_process, aws, f"{LIMIT}:{LIMIT}")
    assert f"Open files: up to {LIMIT}" in listeners.log_text()
    log_size = listeners.log.stat().st_size
    with idle_connections(listeners.port(flooded), FLOOD):
        wait_until(lambda: open_files(process) >= LIMIT - 1, what="the service's files all open")
        # Cameras knock meanwhile: each listener meets the limit (pyftpdlib's closed for good).
        knock(listeners.ftp)
        knock(("127.0.0.1", listeners.smtp))
        knock(("127.0.0.1", listeners.http))
    listeners.wait_until_every_source_takes("after")
    assert process.process.poll() is None
    refusals = listeners.log_text().count("cannot accept connections")
    assert (
        1 <= refusals <= 4
    )  # one line per listener (FTP, SMTP, HTTP push, dashboard), not per retry
    assert listeners.log.stat().st_size - log_size < 64 * 1024


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
@pytest.mark.parametrize("flooded", ["http", "ftp", "smtp", "dashboard"])
def test_the_soft_limit_is_raised_so_a_flood_is_held_while_cameras_upload(
    tmp_path: Path, aws: Moto, service_process: Any, flooded: str
) -> None:
    listeners = Listeners(tmp_path)
    process = listeners.start(service_process, aws, f"{LIMIT}:{4 * FLOOD}")
    assert f"Open files: up to {4 * FLOOD} (raised from {LIMIT})" in listeners.log_text()
    with idle_connections(listeners.port(flooded), FLOOD) as flood:
        assert len(flood) == FLOOD
        # FTP and SMTP hold MAX_SESSIONS of them and turn the rest away.
        wait_until(lambda: open_files(process) > MAX_SESSIONS, what="the flood accepted")
        assert listeners.every_source_takes("during"), listeners.refused
    assert "cannot accept connections" not in listeners.log_text()


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_systemd_hears_ready_and_alive_and_a_closed_listener_ends_the_service(
    tmp_path: Path, aws: Moto, service_process: Any
) -> None:
    listeners = Listeners(tmp_path)
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(60)
        process = listeners.start(
            service_process, aws, "1024:1024", NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000"
        )
        heard = [systemd.recv(100), systemd.recv(100), systemd.recv(100)]
    assert heard == [b"READY=1", b"WATCHDOG=1", b"WATCHDOG=1"]
    # The kernel closes the FTP listener under the service (ss -K), as no camera could.
    port = f":{listeners.ftp[1]}"
    command = ["ss", "-K", "-t", "state", "listening", "sport", "=", port]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    assert process.process.wait(60) == EXIT_FAILURE
    line = "The ftp listener no longer accepts connections; stopping so that the service manager"
    assert process.output.count(line) == 1
    assert "Traceback" not in process.output


# --- FTP and SMTP: a fair share of the sessions for each address -------------------------------

BUSY = {
    "ftp": b"421 Too many connections at once; try again later.\r\n",
    "smtp": b"421 4.3.2 The server is busy (too many connections); try again later\r\n",
}


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
@pytest.mark.parametrize("way", ["ftp", "smtp"])
def test_idle_sessions_from_13_addresses_leave_room_for_a_camera(
    tmp_path: Path, aws: Moto, service_process: Any, way: str
) -> None:
    listeners = Listeners(tmp_path)
    listeners.start(service_process, aws, f"{4 * FLOOD}:{4 * FLOOD}")
    port = listeners.ftp[1] if way == "ftp" else listeners.smtp
    # 13 addresses, each within its share of MAX_SESSIONS_PER_IP: more than MAX_SESSIONS in all.
    addresses = [f"127.0.0.{n}" for n in range(2, 15)]
    assert len(addresses) * MAX_SESSIONS_PER_IP > MAX_SESSIONS
    with ExitStack() as held:
        greetings = [
            greeting(port, address, held)
            for address in addresses
            for _ in range(MAX_SESSIONS_PER_IP)
        ]
        # The camera, from an address of its own, takes an idle session's place.
        if way == "ftp":
            listeners.ftp_upload("fresh.jpg")
        else:
            listeners.smtp_upload("fresh.jpg")
    # Refused (the last address, once it holds as many as the others): busy, not "your address".
    assert {line for line in greetings if not line.startswith(b"220")} <= {BUSY[way]}


def greeting(port: int, source: str, held: ExitStack) -> bytes:
    """The first line a new connection from `source` hears; the connection is kept open."""
    sock = held.enter_context(
        socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    )
    return sock.makefile("rb").readline()


# --- HTTP push: one address cannot lock every camera out -------------------------------------

ATTACKER = "127.0.0.2"
HEADER_START = b"POST /upload HTTP/1.1\r\nHost: cameras\r\n"


@pytest.fixture
def http_push(tmp_path: Path) -> Iterator[HttpIngest]:
    """The HTTP push listener on 127.0.0.1, answering a wrong password after GUESS_DELAY, and
    the next failure from the address GUESS_DELAY after that answer."""
    ingest = HttpIngest(
        HttpIngestConfig(host="127.0.0.1").model_copy(update={"port": 0}),
        camera_directory(tmp_path / "ftp"),
        collecting_intake(lambda uploads: [1], tmp_path / "data"),
        login_throttle=LoginThrottle(
            first_delay_seconds=GUESS_DELAY, max_delay_seconds=GUESS_DELAY
        ),
    )
    ingest.start()
    yield ingest
    ingest.stop()


def camera_posts(ingest: HttpIngest) -> int:
    return post_jpeg(ingest.address[1], CAMERAS["cam01"])


def attacker_socket(ingest: HttpIngest) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((ATTACKER, 0))
    sock.connect(("127.0.0.1", ingest.address[1]))
    return sock


def test_one_address_idle_and_trickling_connections_leave_room_for_others(
    http_push: HttpIngest,
) -> None:
    with ExitStack() as held:
        for number in range(70):
            sock = held.enter_context(attacker_socket(http_push))
            if number % 2:  # trickling: headers begun, never finished
                with suppress(OSError):  # a refused connection may be closed already
                    sock.sendall(HEADER_START)
        assert camera_posts(http_push) == 201


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_headers_that_never_end_are_cut_off(http_push: HttpIngest) -> None:
    with attacker_socket(http_push) as sock:
        sock.sendall(HEADER_START)
        sock.settimeout(0.5)  # the pace of the trickle: a header line each half second
        for line in range(240):  # two minutes at most
            if closed_or_trickled(sock, b"X-Trickle-%d: 1\r\n" % line):
                break
        else:
            pytest.fail("the connection was still open after two minutes of trickled headers")


def test_a_body_that_never_ends_is_cut_off() -> None:
    async def read_body(request: Request) -> Response:
        try:
            return PlainTextResponse(f"{len(await request.body())} bytes")
        except ClientDisconnect:
            return PlainTextResponse("cut off", 400)

    protocol = make_guarded_protocol("test uploads", 64, headers_seconds=1, body_seconds=2)
    app = Starlette(routes=[Route("/", read_body, methods=["POST"])])
    server = AsgiServer(
        app, "127.0.0.1", 0, what="test", hint="-", thread_name="test-http", http_protocol=protocol
    )
    server.start()
    try:
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: cameras\r\nContent-Length: 1000000\r\n\r\n")
            sock.settimeout(0.5)
            for _ in range(240):  # two minutes at most
                if closed_or_trickled(sock, b"x" * 10):
                    break
            else:
                pytest.fail("the connection was still open after two minutes of a trickled body")
    finally:
        server.stop()


def closed_or_trickled(sock: socket.socket, header: bytes) -> bool:
    """True once the server has closed the connection; else sends it one more header line."""
    try:
        if sock.recv(100) == b"":
            return True
    except TimeoutError:
        pass
    except ConnectionError:  # closed with a line unread: a reset
        return True
    try:
        sock.sendall(header)
    except ConnectionError:
        return True
    return False


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_parallel_wrong_passwords_from_one_address_are_answered_one_by_one(
    http_push: HttpIngest,
) -> None:
    guesses = 3
    start = threading.Barrier(guesses + 1)
    answers: list[int] = []
    url = f"http://127.0.0.1:{http_push.address[1]}/upload"

    def guess(number: int) -> None:
        transport = httpx.HTTPTransport(local_address=ATTACKER)
        with httpx.Client(transport=transport, timeout=60) as client:
            start.wait()
            answer = client.post(url, content=JPEG, auth=("cam01", f"guess-{number}"))
            answers.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    start.wait()
    assert camera_posts(http_push) == 201  # another address is not held up
    wait_until(lambda: answers, 60, "the first answer")
    # One by one, the next answer comes a whole delay after the first; side by side, with it.
    assert answers == [401]
    for thread in threads:
        thread.join(60)
    assert answers == [401] * guesses
