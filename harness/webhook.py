"""A real HTTP server on a loopback port that keeps every request; paths under /fails answer 500."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HOST = "127.0.0.1"
FAILING_PATH = "/fails"


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    host: str
    port: int
    requests: list[WebhookRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refusing: bool = False  # every path answers 500 while set (a target that is down)

    def url(self, path: str, *, scheme: str = "json", login: str = "") -> str:
        """An Apprise URL for this server, such as `json://user:pass@127.0.0.1:PORT/path`."""
        return f"{scheme}://{login + '@' if login else ''}{self.host}:{self.port}{path}"

    def received(self, path: str) -> list[WebhookRequest]:
        with self.lock:
            return [request for request in self.requests if request.path == path]


def _handler(sink: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = WebhookRequest(self.command, self.path, dict(self.headers), body)
            with sink.lock:
                sink.requests.append(request)
            failing = sink.refusing or self.path.startswith(FAILING_PATH)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # pytest shows the test's own output; the access log adds nothing

    return Handler


@contextmanager
def running_webhook_sink() -> Iterator[WebhookSink]:
    """An HTTP server keeping what it receives in `sink.requests`, until the block ends."""
    sink = WebhookSink(HOST, 0)
    server = ThreadingHTTPServer((HOST, 0), _handler(sink))
    sink.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """An HTTP server keeping what it receives in `webhook_sink.requests`."""
    with running_webhook_sink() as sink:
        yield sink
