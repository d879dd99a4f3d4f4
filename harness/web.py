"""Events made directly (no FTP, no moto), a dashboard served over them, and raw HTTP helpers."""

from __future__ import annotations

import base64
import http.client
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from starlette.applications import Starlette

from harness.service import DATA
from ipcam_analysis.config import AppConfig
from ipcam_analysis.imaging import event_pictures
from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.store import Database, EventRecord, EventStore, LocalStorage, open_database
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import (
    Box,
    Decision,
    Detection,
    Instance,
    Label,
    MatchedLabel,
    NotifyOutcome,
    Snapshot,
    Upload,
)
from ipcam_analysis.web import DashboardContext, WebServer, create_app

PERSON_BOX = Box(0.25, 0.2, 0.2, 0.6)


def snapshot_of(name: str = "darknet_person.jpg") -> Snapshot:
    data = (DATA / name).read_bytes()
    return Snapshot(data, "JPEG", Image.open(io.BytesIO(data)).convert("RGB"))


def person(confidence: float = 97.0, box: Box = PERSON_BOX) -> Label:
    return Label("Person", confidence, aliases=("Human",), instances=(Instance(box, confidence),))


def event_record(
    item_id: int,
    *,
    camera: str = "cam01",
    received_at: datetime | None = None,
    outcome: str = "alert",
    labels: Sequence[Label] = (),
    triggered: Sequence[str] = (),
    snapshot: Snapshot | None = None,
    notifications: Sequence[NotifyOutcome] = (),
    reason: str | None = None,
    cloud_calls: int = 1,
) -> EventRecord:
    """An event as the pipeline would record it (its picture kept as the pipeline keeps it);
    a detection only when labels are given."""
    received = received_at or datetime.now().astimezone()
    detection = (
        Detection("rekognition", tuple(labels), 123.4, cloud_calls)
        if labels or cloud_calls
        else None
    )
    matched = tuple(MatchedLabel(label, label.name) for label in labels if label.name in triggered)
    return EventRecord(
        item_id=item_id,
        upload=Upload(
            camera,
            Path(f"/ftp/{camera}/{item_id}.jpg"),
            received,
            "192.0.2.7",
            f"2026/{item_id}.jpg",
        ),
        outcome=outcome,
        reason=reason,
        file_size=len(snapshot.data) if snapshot else 12,
        pictures=event_pictures(snapshot) if snapshot else None,
        detection=detection,
        decision=Decision(bool(matched), matched) if detection else None,
        notifications=tuple(notifications),
    )


@dataclass
class Dashboard:
    """A dashboard over a store, served by a real uvicorn on a loopback port."""

    store: EventStore
    queue: UploadQueue
    server: WebServer
    client: httpx.Client
    app: Starlette  # what it serves: its routes say which paths exist

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address


@pytest.fixture
def served_store(tmp_path: Path) -> Iterator[Callable[..., Dashboard]]:
    """`start(config_overrides, ftp_address=...)` → a Dashboard over an empty store in tmp_path."""
    started: list[tuple[WebServer, httpx.Client, Database]] = []

    def start(
        ftp_address: Callable[[], tuple[str, int] | None] = lambda: None,
        started_at: float | None = None,
        login_throttle: LoginThrottle | None = None,
        **overrides: Any,
    ) -> Dashboard:
        config = AppConfig.model_validate(
            {
                "data_dir": str(tmp_path / "data"),
                "ftp_server": {"users": {"cam01": "pw-cam01", "cam02": "pw-cam02"}},
                "detector": {"type": "local"},
                "web": {"port": 0},
                **overrides,
            }
        )
        database = open_database(config.database, config.data_dir)
        queue = UploadQueue(database)
        store = EventStore(database, LocalStorage(config.data_dir), config.history)
        context = DashboardContext(
            config,
            store,
            queue,
            Metrics(queue.depth),
            lambda: {"ftp": ftp_address()},
            time.time() if started_at is None else started_at,
        )
        app = create_app(context, login_throttle)
        server = WebServer(app, "127.0.0.1", 0)
        server.start()
        client = httpx.Client(base_url=server.url.rstrip("/"), timeout=30)
        started.append((server, client, database))
        return Dashboard(store, queue, server, client, app)

    yield start
    for server, client, database in started:
        client.close()
        server.stop()
        database.close()


def raw_get(
    address: tuple[str, int], raw_path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET with the path sent byte for byte: httpx would normalise `..` away before sending."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", raw_path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def card_texts(page_html: str) -> list[str]:
    """The text a user reads on each card (`<li class="card ...">`) of a page, spaces collapsed."""
    cards = _Cards()
    cards.feed(page_html)
    return [" ".join("".join(parts).split()) for parts in cards.texts]


def page_text(page_html: str) -> str:
    """The text a user reads on a page, spaces collapsed."""
    return card_texts(f'<li class="card">{page_html}</li>')[0]


class _Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[list[str]] = []
        self._depth = 0  # how deep in the current card's <li> elements; 0: in no card

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li" and self._depth:
            self._depth += 1
        elif tag == "li" and "card" in (dict(attrs).get("class") or "").split():
            self.texts.append([])
            self._depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.texts[-1].append(data)


def wait_for_pictures(page: Page) -> None:
    """Wait until every picture on the page has loaded, and check that none is broken.

    Polled by Playwright's assertions on each picture: `wait_for_function` evaluates its string
    with `eval` in the page, which the dashboard's Content-Security-Policy forbids as soon as the
    first check is not already true (a thumbnail still loading)."""
    for picture in page.locator("img").all():
        expect(picture).to_have_js_property("complete", True)
        loaded_width = picture.evaluate("image => image.naturalWidth")
        assert loaded_width > 0, f"{picture.get_attribute('src')} did not load"


def days_ago(days: float) -> datetime:
    return datetime.now().astimezone() - timedelta(days=days)
