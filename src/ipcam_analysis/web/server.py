"""Runs the dashboard's ASGI app with uvicorn in a daemon thread."""

from __future__ import annotations

from starlette.types import ASGIApp

from ipcam_analysis.net.asgi_server import AsgiServer, ListenerError

WebServerError = ListenerError  # the dashboard cannot start; one line for the user


class WebServer(AsgiServer):
    """`start()` returns once the dashboard is listening; `stop()` is graceful and bounded."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        super().__init__(
            app,
            host,
            port,
            what="the dashboard",
            hint="change web.port, or set web.enabled: false",
            thread_name="web",
        )
