"""The JSON API under /api/, plus /healthz and /metrics for monitoring."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ipcam_analysis.web.context import context_of
from ipcam_analysis.web.params import (
    BadRequest,
    camera_event_filter,
    days_parameter,
    event_filter,
)
from ipcam_analysis.web.summaries import SILENT_AFTER_SECONDS


def list_events(request: Request) -> Response:
    """Newest first; `next_before_id` is the `before_id` of the next (older) page, or null."""
    try:
        filters = event_filter(request.query_params)
    except BadRequest as exc:
        return _error(400, str(exc))
    events, next_before_id = context_of(request).events_page(filters)
    return JSONResponse(
        {"events": [_with_links(event) for event in events], "next_before_id": next_before_id}
    )


def get_event(request: Request) -> Response:
    event = context_of(request).store.event(request.path_params["event_id"])
    if event is None:
        return _error(404, "no such event")
    return JSONResponse(_with_links(event))


def list_camera_events(request: Request) -> Response:
    """What cameras reported themselves (XMeye alarms), newest first."""
    try:
        camera, before_id, limit = camera_event_filter(request.query_params)
    except BadRequest as exc:
        return _error(400, str(exc))
    events = context_of(request).store.camera_events.recent(camera, before_id, limit)
    return JSONResponse({"camera_events": events})


def list_cameras(request: Request) -> Response:
    cameras = context_of(request).cameras()
    return JSONResponse({"cameras": cameras, "silent_after_seconds": SILENT_AFTER_SECONDS})


def get_usage(request: Request) -> Response:
    try:
        days = days_parameter(request.query_params)
    except BadRequest as exc:
        return _error(400, str(exc))
    return JSONResponse(context_of(request).usage(days))


def healthz(request: Request) -> Response:
    """200 while cameras can upload, 503 when the FTP listener is down."""
    healthy, report = context_of(request).health()
    return JSONResponse(report, status_code=200 if healthy else 503)


def metrics(request: Request) -> Response:
    return Response(context_of(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _with_links(event: dict[str, Any]) -> dict[str, Any]:
    number = event["id"]
    picture = event["has_snapshot"]
    return {
        **event,
        "url": f"/events/{number}",
        "snapshot_url": f"/snapshots/{number}.jpg" if picture else None,
        "thumbnail_url": f"/snapshots/{number}_thumb.jpg" if picture else None,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


monitoring_routes = [Route("/healthz", healthz), Route("/metrics", metrics)]
routes = [
    Route("/api/events", list_events),
    Route("/api/events/{event_id:event_id}", get_event),
    Route("/api/cameras", list_cameras),
    Route("/api/camera_events", list_camera_events),
    Route("/api/usage", get_usage),
    *monitoring_routes,
]
