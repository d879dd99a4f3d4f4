"""Builds the dashboard's Starlette app: routes, static files, login, security headers, errors."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipcam_analysis.ingest.throttle import LoginThrottle
from ipcam_analysis.web import api, exceptions, pages
from ipcam_analysis.web.auth import BasicAuthMiddleware, PasswordHash
from ipcam_analysis.web.context import DashboardContext

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none';"
        " form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# Monitoring probes (Docker, systemd, uptime checkers) rarely carry a login, and the health
# report holds nothing private: queue depth, the FTP address, the last detector success.
OPEN_PATHS = frozenset({"/healthz"})

log = logging.getLogger(__name__)


def create_app(context: DashboardContext, login_throttle: LoginThrottle | None = None) -> Starlette:
    """The ASGI app; a config with a password_hash puts every page but /healthz behind a login
    (failed logins slowed by `login_throttle`, the cameras' policy by default).
    A node without the web role serves only /healthz and /metrics."""
    web = context.config.web
    middleware: list[Middleware] = []
    if web.password_hash is not None:
        middleware.append(
            Middleware(
                BasicAuthMiddleware,
                username=web.username or "",
                password_hash=PasswordHash.parse(web.password_hash.get_secret_value()),
                open_paths=OPEN_PATHS,
                login_throttle=login_throttle,
            )
        )
    app = DashboardApp(
        routes=(
            [
                *pages.routes,
                *exceptions.routes,
                *api.routes,
                Mount(
                    "/static",
                    StaticFiles(directory=Path(__file__).parent / "static"),
                    name="static",
                ),
            ]
            if "web" in context.roles
            else api.monitoring_routes
        ),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.context = context
    return app


class DashboardApp(Starlette):
    """Starlette with the security headers and the error log line outside its own error handling
    (which answers 500 from the outermost layer), so a 500 carries the headers too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(_OneLineErrors(super().build_middleware_stack()))


class _OneLineErrors:
    """Starlette raises again what made a 500, for the server to log: one line here, not
    uvicorn's traceback (that only at DEBUG)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        except Exception as exc:
            log.error(
                "Dashboard error on %r: %s: %s",
                scope.get("path", ""),
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every response, errors and login prompts included."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, send_with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # The API and the dashboard's actions (web/exceptions.py) are read by scripts.
    if request.url.path.startswith("/api/") or request.method == "POST":
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    title = "Not found" if exc.status_code == 404 else "Error"
    return pages.render(request, "error.html", exc.status_code, title=title, message=exc.detail)
