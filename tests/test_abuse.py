"""Abuse: password guessing, too many sessions, and the dashboard under load, with cameras still
served throughout. The attacker has an address of its own (all of 127/8 is loopback)."""

from __future__ import annotations

import ftplib
import http.client
import logging
import smtplib
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from harness.endurance import (
    FixedLatencyDetector,
    StartService,
    jpeg_bytes,
    load_ended,
    load_result,
    run_load,
)
from harness.ftp import CAMERAS, StartFtp, camera_directory, upload_with_ftplib
from harness.intake import collecting_intake
from harness.service import upload, wait_until
from ipcam_analysis.ingest.ftp import FtpIngest, FtpServerConfig
from ipcam_analysis.ingest.http import HttpIngest, HttpIngestConfig
from ipcam_analysis.ingest.smtp import SmtpIngest, SmtpServerConfig
from ipcam_analysis.ingest.throttle import LOGGED_FAILURES_IN_A_ROW, LoginThrottle

ATTACKER = "127.0.0.2"
GUESSES = 1000
ATTACKER_SESSIONS = 10  # at once, each guessing until pyftpdlib hangs up (after 3)
# The real delays (3 s doubling to 30 s) would make 1000 guesses take an hour.
THROTTLE = {"first_delay_seconds": 0.002, "max_delay_seconds": 0.02}
SNAPSHOT = jpeg_bytes()


def guess_passwords(host: str, port: int, guesses: int) -> list[float]:
    """Wrong passwords for cam01 from ATTACKER; how long each answer took."""
    waits: list[float] = []
    lock = threading.Lock()
    remaining = iter(range(guesses))

    def session() -> None:
        while True:
            with ftplib.FTP(source_address=(ATTACKER, 0)) as ftp:
                ftp.connect(host, port, timeout=20)
                for _ in range(3):  # pyftpdlib's max_login_attempts per session
                    if next(remaining, None) is None:
                        return
                    started = time.monotonic()
                    with pytest.raises(ftplib.error_perm, match=r"^530"):
                        ftp.login("cam01", "guess")
                    with lock:
                        waits.append(time.monotonic() - started)

    with ThreadPoolExecutor(ATTACKER_SESSIONS) as pool:
        for future in [pool.submit(session) for _ in range(ATTACKER_SESSIONS)]:
            future.result(timeout=300)
    return waits


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_password_guessing_is_slowed_and_logged_while_cameras_upload(
    start_ftp: StartFtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ipcam_analysis.ingest.ftp")
    throttle = LoginThrottle(**THROTTLE)
    running = start_ftp(login_throttle=throttle)
    attack = ThreadPoolExecutor(1)
    waits = attack.submit(guess_passwords, running.host, running.port, GUESSES)

    # Meanwhile a camera on another address logs in and uploads, with nothing to wait out.
    uploaded = 0
    for number in range(1000):  # bounded; the attack ends long before
        if waits.done() and uploaded >= 5:
            break
        upload_with_ftplib(
            running.host, running.port, "cam02", CAMERAS["cam02"], f"{number}.jpg", SNAPSHOT
        )
        uploaded += 1
    guessed = waits.result(timeout=300)
    attack.shutdown()

    assert len(guessed) == GUESSES
    assert len(running.wait_for_uploads(uploaded)) == uploaded
    assert throttle.failures(ATTACKER) == GUESSES
    assert throttle.failures("127.0.0.1") == 0
    # Slowed: once escalated, no answer comes before the longest delay (a lower bound only).
    assert min(guessed[-100:]) >= THROTTLE["max_delay_seconds"]
    # Logged: each of the first failures in a row, then one line per hundred.
    lines = [r.getMessage() for r in caplog.records]
    assert all(ATTACKER in line for line in lines)
    assert len(lines) == LOGGED_FAILURES_IN_A_ROW + GUESSES // 100
    assert lines[-1] == f"Failed FTP login as 'cam01' from {ATTACKER} ({GUESSES} in a row)"


def test_failed_logins_on_every_protocol_count_and_are_logged_as_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One guesser trying FTP, then SMTP, then HTTP: one count for its address, slowing all
    three alike, and one policy's lines in each source's log."""
    caplog.set_level(logging.WARNING, logger="ipcam_analysis.ingest")
    throttle = LoginThrottle(**THROTTLE)
    intake = collecting_intake(lambda uploads: [1], tmp_path / "data")
    where = {"host": "127.0.0.1", "port": 0}
    cameras = camera_directory(tmp_path / "ftp")
    ftp = FtpIngest(
        FtpServerConfig(root_dir=cameras.root_dir, users=CAMERAS).model_copy(update=where),
        intake,
        login_throttle=throttle,
    )
    smtp = SmtpIngest(
        SmtpServerConfig(enabled=True).model_copy(update=where),
        cameras,
        intake,
        login_throttle=throttle,
    )
    http = HttpIngest(
        HttpIngestConfig(enabled=True).model_copy(update=where),
        cameras,
        intake,
        login_throttle=throttle,
    )
    with ExitStack() as servers:
        for server in (ftp, smtp, http):
            server.start()
            servers.callback(server.stop)
        with ftplib.FTP(source_address=(ATTACKER, 0)) as session:
            session.connect(*ftp.address, timeout=20)
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                session.login("cam01", "guess")
        with smtplib.SMTP(*smtp.address, timeout=20, source_address=(ATTACKER, 0)) as client:
            client.ehlo()
            client.user, client.password = "cam02", "guess"
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.auth("PLAIN", client.auth_plain)  # login() would try LOGIN next
        web = httpx.Client(transport=httpx.HTTPTransport(local_address=ATTACKER), timeout=20)
        with web:
            answer = web.post(f"http://127.0.0.1:{http.address[1]}/upload", auth=("cam01", "x"))
        assert answer.status_code == 401

    assert throttle.failures(ATTACKER) == 3
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Failed")] == [
        f"Failed FTP login as 'cam01' from {ATTACKER} (1 in a row)",
        f"Failed SMTP login as 'cam02' from {ATTACKER} (2 in a row)",
        f"Failed HTTP upload login as 'cam01' from {ATTACKER} (3 in a row)",
    ]


def test_the_21st_session_from_one_address_is_refused_and_cameras_carry_on(
    run_service: StartService,
) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    host, port = running.address
    with ExitStack() as stack:
        for _ in range(20):
            ftp = stack.enter_context(ftplib.FTP(source_address=(ATTACKER, 0)))
            ftp.connect(host, port, timeout=20)
        with pytest.raises(ftplib.error_temp, match=r"^421 Too many connections"):
            ftplib.FTP(source_address=(ATTACKER, 0)).connect(host, port, timeout=20)
        upload(running.address, "cam01", SNAPSHOT, "while-held.jpg")
    running.wait_idle()
    assert running.outcomes() == [("while-held.jpg", "no_match")]


def guess_once(host: str, port: int, sent: threading.Event) -> float:
    """One wrong password for cam01 from ATTACKER; `sent` is set once it is on its way; returns
    how long the answer took."""
    with ftplib.FTP(source_address=(ATTACKER, 0)) as ftp:
        ftp.connect(host, port, timeout=20)
        ftp.sendcmd("USER cam01")
        ftp.putcmd("PASS guess")
        started = time.monotonic()
        sent.set()
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.getresp()
        return time.monotonic() - started


LOAD_SECONDS = 10.0
LOAD_CLIENTS = 8
PROBE_EVERY_SECONDS = 0.25
DASHBOARD_PATHS = ["/", "/api/events", "/cameras", "/usage", "/healthz", "/metrics", "/config"]


def test_dashboard_and_api_answer_under_load(run_service: StartService, tmp_path: Path) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    for number in range(20):
        upload(running.address, "cam01", SNAPSHOT, f"{number}.jpg")
    running.wait_idle()
    assert running.service.web is not None
    host, port = running.service.web.address
    spec = {
        "host": host,
        "port": port,
        "seconds": LOAD_SECONDS,
        "clients": LOAD_CLIENTS,
        "paths": DASHBOARD_PATHS,
    }
    load = run_load("http", spec, tmp_path)

    answers: list[float] = []  # figures for the report: a probe's time is not a test
    statuses: Counter[int] = Counter()
    for number in range(int(LOAD_SECONDS) * 4):
        if load_ended(load, PROBE_EVERY_SECONDS):
            break
        connection = http.client.HTTPConnection(host, port, timeout=30)
        started = time.monotonic()
        connection.request("GET", "/api/events?limit=50")
        response = connection.getresponse()
        response.read()
        answers.append(time.monotonic() - started)
        statuses[response.status] += 1
        connection.close()
        if number == 0:  # a camera is served during the load too
            upload(running.address, "cam02", SNAPSHOT, "during-load.jpg")
    seen = load_result(load, timeout=LOAD_SECONDS + 60)

    assert answers and statuses == Counter({200: len(answers)})  # every probe answered
    assert seen["errors"] == {}
    assert set(seen["replies"]) == {"200"}
    running.wait_idle()
    assert running.outcomes()[-1] == ("during-load.jpg", "no_match")
    requests = sum(seen["replies"].values())
    print(
        f"\ndashboard load: {LOAD_CLIENTS} clients, {requests} requests in {LOAD_SECONDS:.0f} s"
        f" ({requests / LOAD_SECONDS:.0f}/s); probe median"
        f" {statistics.median(answers) * 1000:.0f} ms, max {max(answers) * 1000:.0f} ms"
    )


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_guessing_through_the_service_holds_up_the_guesser_only(
    run_service: StartService,
) -> None:
    # The service's own throttle: a wrong guess is answered after 3 s, to its address only.
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    host, port = running.address
    sent = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        guess = pool.submit(guess_once, host, port, sent)
        wait_until(sent.is_set, what="the guess to be sent")
        upload(running.address, "cam01", SNAPSHOT, "not-held-up.jpg")
        assert not guess.done()  # the camera was served while the guesser waits
        waited = guess.result(timeout=30)
    assert waited >= 3.0  # a lower bound: the throttle's delay, which no slowness shortens
    running.wait_idle()
    assert running.outcomes() == [("not-held-up.jpg", "no_match")]
