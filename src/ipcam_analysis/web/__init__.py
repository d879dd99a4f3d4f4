"""The dashboard and JSON API: Starlette routes over the event store, served by uvicorn."""

from ipcam_analysis.web.app import create_app
from ipcam_analysis.web.context import DashboardContext
from ipcam_analysis.web.server import WebServer, WebServerError

__all__ = ["DashboardContext", "WebServer", "WebServerError", "create_app"]
