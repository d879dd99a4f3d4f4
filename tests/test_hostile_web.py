"""The dashboard under a stranger's hand, over real HTTP (uvicorn on loopback): a login guesser
from an address of its own, ids too big for the database, and a failure that makes a 500."""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.endurance import MB, PeakMemory
from harness.service import wait_until
from harness.web import basic_auth, event_record, raw_get
from ipcam_analysis.ingest.throttle import LOGGED_FAILURES_IN_A_ROW, LoginThrottle
from ipcam_analysis.store.database import DATABASE_FILE
from ipcam_analysis.web.app import SECURITY_HEADERS
from ipcam_analysis.web.auth import hash_password

ATTACKER, OWNER = "127.0.0.2", "127.0.0.1"
PASSWORD = "correct horse battery staple"
LOGIN = {"port": 0, "username": "admin", "password_hash": hash_password(PASSWORD)}
GUESSES, AT_ONCE = 100, 20
# Each scrypt check holds 32 MiB: twenty at once took 640 MB.
MAX_RSS_GROWTH = 300 * MB
# The cameras' policy (3 s doubling to 30 s) would make 100 guesses take an hour.
QUICK_THROTTLE = {"first_delay_seconds": 0.001, "max_delay_seconds": 0.01}
HUGE_IDS = ("99999999999999999999999", "9223372036854775808", "18446744073709551616")


@pytest.mark.embedded_only  # about the listeners: the backend plays no part
def test_a_login_guesser_is_slowed_logged_and_bounded_while_the_owner_logs_in(
    served_store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ipcam_analysis.web.auth")
    throttle = LoginThrottle(**QUICK_THROTTLE)
    dashboard = served_store(web=LOGIN, login_throttle=throttle)
    url = dashboard.server.url + "api/cameras"
    attacker = httpx.Client(transport=httpx.HTTPTransport(local_address=ATTACKER), timeout=120)

    def guess(number: int) -> int:
        return attacker.get(url, headers=basic_auth("admin", f"guess-{number}")).status_code

    memory = PeakMemory()
    with attacker, ThreadPoolExecutor(AT_ONCE) as pool:
        answers = pool.map(guess, range(GUESSES))
        # Well into the attack, the owner logs in from another address.
        wait_until(lambda: throttle.failures(ATTACKER) >= 5, 120, "the guesses to be refused")
        owner = httpx.get(url, headers=basic_auth("admin", PASSWORD), timeout=120)
        guessed_meanwhile = throttle.failures(ATTACKER)
        statuses = list(answers)
    growth = memory.stop()
    print(f"RSS {memory.baseline / MB:.0f} MB -> peak {memory.peak / MB:.0f} MB")

    assert owner.status_code == 200 and owner.json()["cameras"]
    assert 5 <= guessed_meanwhile < GUESSES  # the attack was still going on
    assert statuses == [401] * GUESSES
    assert growth < MAX_RSS_GROWTH
    lines = [r.getMessage() for r in caplog.records if r.name == "ipcam_analysis.web.auth"]
    # Each failure up to LOGGED_FAILURES_IN_A_ROW, then the hundredth.
    assert len(lines) == LOGGED_FAILURES_IN_A_ROW + 1
    assert lines[0] == f"Failed dashboard login as 'admin' from {ATTACKER} (1 in a row)"
    assert lines[-1].endswith(f"from {ATTACKER} (100 in a row)")
    assert throttle.failures(OWNER) == 0


@pytest.mark.parametrize("number", HUGE_IDS)
@pytest.mark.parametrize(
    "path",
    ["/events/{}", "/api/events/{}", "/snapshots/{}.jpg", "/snapshots/{}_thumb.jpg"],
)
def test_an_id_too_big_for_the_database_is_not_found(
    served_store, path: str, number: str, caplog: pytest.LogCaptureFixture
) -> None:
    dashboard = served_store()
    dashboard.store.record(event_record(1))
    response = dashboard.client.get(path.format(number))
    assert response.status_code == 404
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    if path.startswith("/api/"):
        assert response.json() == {"error": "Not Found"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_500_carries_the_security_headers_and_logs_one_line(
    served_store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dashboard = served_store()
    dashboard.store.record(event_record(1))
    # A damaged database: the events table is gone from under the running dashboard.
    with sqlite3.connect(tmp_path / "data" / DATABASE_FILE) as damage:
        damage.execute("ALTER TABLE events RENAME TO events_lost")
    for path in ("/", "/api/events"):
        status, body = raw_get(dashboard.address, path)
        response = dashboard.client.get(path)
        assert response.status_code == status == 500, body
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    # One line of ours for each, not the server's "Exception in ASGI application" traceback.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4 and {r.name for r in errors} == {"ipcam_analysis.web.app"}
    assert "Dashboard error on '/api/events': OperationalError: no such table: events" in (
        caplog.text
    )
