"""The service as a real process over a slow cloud and a mail sink, to kill and restart it, and
what its database and the sinks say afterwards (for tests/test_crash.py and bench/kill_rounds.py)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from harness.aws import Moto, label
from harness.backends import query_database
from harness.service import (
    DATA,
    ServiceProcess,
    base_config,
    service_environment,
    wait_until,
    write_config,
)
from harness.smtp import SmtpSink

PERSON_JPEG = (DATA / "darknet_person.jpg").read_bytes()
PERSON = label("Person", 97.0, boxes=((0.3, 0.2, 0.2, 0.6),))


@dataclass
class Tally:
    """What became of the accepted uploads after the last restart drained the queue."""

    uploads: int
    events: int
    lost: int  # accepted (a queue row) and no event
    events_per_upload: Counter[int]  # upload id → events recorded for it
    alerts: int
    emails: int
    duplicate_emails: int  # copies beyond the first of an alert
    duplicates_with_new_message_id: int  # copies a mail client cannot merge
    cloud_calls: int

    @property
    def extra_cloud_calls(self) -> int:
        return self.cloud_calls - self.uploads


@dataclass
class CrashRig:
    """One data folder, reused by every start: a kill and a start resume where the kill left."""

    folder: Path
    moto: Moto
    sink: SmtpSink
    config_overrides: dict[str, Any] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.folder / "data" / "ipcam_analysis.db"

    @property
    def snapshot_dir(self) -> Path:
        return self.folder / "data" / "snapshots"

    def start(self, **env: str) -> ServiceProcess:
        config = base_config(self.folder, **{"workers": 1, **self.config_overrides})
        config["email"] = {
            **config["email"],
            "transport": "smtp",
            "smtp": {"host": self.sink.host, "port": self.sink.port, "security": "none"},
        }
        path = write_config(self.folder, config)
        process = ServiceProcess(
            ["-c", str(path), "-n"], self.folder, service_environment(self.moto, **env)
        )
        self.processes.append(process)
        process.address()
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.process.poll() is None:
                process.kill()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read of the service's database, as another program would make it."""
        return query_database(self.folder / "data", sql, params)

    def detection_saved(self, item_id: int) -> bool:
        rows = self.query("SELECT detection FROM uploads WHERE id = $1", (item_id,))
        return bool(rows and rows[0][0])

    def notified(self, item_id: int) -> list[str]:
        rows = self.query("SELECT notified FROM uploads WHERE id = $1", (item_id,))
        return json.loads(rows[0][0]) if rows else []

    def drained(self) -> bool:
        return not self.query("SELECT 1 FROM uploads WHERE state != 'done' LIMIT 1")

    def wait_drained(self, timeout: float = 120) -> None:
        wait_until(self.drained, timeout, "every accepted upload to be finished")

    def tally(self) -> Tally:
        uploads = [row[0] for row in self.query("SELECT id FROM uploads")]
        events = Counter(row[0] for row in self.query("SELECT id FROM events"))
        alerts = self.query("SELECT COUNT(*) FROM events WHERE outcome = 'alert'")[0][0]
        mails = alert_mails(self.sink)
        by_id = Counter(m["Message-ID"] for m in mails)
        return Tally(
            uploads=len(uploads),
            events=sum(events.values()),
            lost=sum(1 for item in uploads if not events[item]),
            events_per_upload=Counter({item: events[item] for item in uploads}),
            alerts=alerts,
            emails=len(mails),
            duplicate_emails=len(mails) - len(by_id),
            duplicates_with_new_message_id=max(0, len(by_id) - alerts),
            cloud_calls=self.moto.rekognition.calls,
        )


def alert_mails(sink: SmtpSink) -> list[EmailMessage]:
    """The alerts the sink accepted (not the service's error e-mails)."""
    return [m for m in sink.messages if m["Subject"] != "Image processing error"]


@pytest.fixture
def rig(tmp_path: Path, aws: Moto, smtp_sink: SmtpSink) -> Iterator[CrashRig]:
    """A CrashRig in tmp_path whose cloud sees a person; whatever it started is killed after."""
    aws.rekognition.labels = [PERSON]
    crash_rig = CrashRig(tmp_path, aws, smtp_sink)
    yield crash_rig
    smtp_sink.stop_holding()
    crash_rig.stop_all()
