"""The HTML pages (events, one event, cameras, usage, config) and the snapshot files."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

import yaml
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ipcam_analysis.rules import not_a, suggest_thresholds
from ipcam_analysis.web.context import context_of
from ipcam_analysis.web.overlay import overlay_layers
from ipcam_analysis.web.params import OUTCOMES, BadRequest, days_parameter, event_filter
from ipcam_analysis.web.summaries import (
    CARD_LABELS,
    SILENT_AFTER_SECONDS,
    bar_chart,
    describe_duration,
    explained,
    no_picture_note,
)
from ipcam_analysis.web.thumbnails import event_thumbnail

log = logging.getLogger(__name__)

# What a browser plays (an MP4 of H.264, as most cameras write); other clips are downloaded.
CLIP_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska"}

CAMERA_EVENTS_SHOWN = 20


def _clock(iso: str | None) -> str:
    """A time from the store as the pages show it: local, to the second, no offset."""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S") if iso else ""


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["clock"] = _clock
templates.env.filters["duration"] = describe_duration
templates.env.filters["not_a"] = not_a
templates.env.globals["OUTCOMES"] = OUTCOMES
# A camera's link, for the sources that reach out to cameras (ONVIF).
templates.env.globals["LINK_STATES"] = {
    "connected": "ONVIF: subscribed to motion events",
    "subscribing": "ONVIF: subscribing",
    "failing": "ONVIF: cannot subscribe",
    "on_alarm": "Snapshot fetched on the camera's alarm",
}


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def events_page(request: Request) -> Response:
    context = context_of(request)
    params = request.query_params
    try:
        filters = event_filter(params)
    except BadRequest as exc:
        return _bad_request(request, exc)
    events, next_before_id = context.events_page(filters)
    # Links keep the filters; empty form fields are left out of them.
    kept = {k: v for k, v in params.items() if v and k != "before_id"}
    return render(
        request,
        "events.html",
        section="Events",
        title="Events",
        events=[explained(event, CARD_LABELS) for event in events],
        filters=params,
        filtered=any(v for k, v in params.items() if k not in ("before_id", "limit")),
        newest=_query(kept) if filters.before_id is not None else None,
        older=_query({**kept, "before_id": next_before_id}) if next_before_id else None,
        cameras=[camera["name"] for camera in context.cameras()],
        labels=context.config.labels,
    )


def event_page(request: Request) -> Response:
    event = context_of(request).store.event(request.path_params["event_id"])
    if event is None:
        raise HTTPException(404, "No such event: it may have been removed by retention.")
    layers = overlay_layers(event)
    return render(
        request,
        "event.html",
        section="Events",
        title=f"Event {event['id']}",
        event=explained(event),
        no_picture=None if event["has_snapshot"] else no_picture_note(event),
        layers=layers,
    )


def cameras_page(request: Request) -> Response:
    return render(
        request,
        "cameras.html",
        section="Cameras",
        title="Cameras",
        cameras=[_with_story(camera) for camera in context_of(request).cameras()],
        silent_after=describe_duration(SILENT_AFTER_SECONDS),
        camera_events=context_of(request).store.camera_events.recent(limit=CAMERA_EVENTS_SHOWN),
        exceptions=context_of(request).store.exceptions.listing(),
    )


def _with_story(camera: dict[str, Any]) -> dict[str, Any]:
    """A camera whose latest picture's card says what it showed and why it alerted or not."""
    pictured = camera["last_snapshot"]
    return {**camera, "last_snapshot": pictured and explained(pictured, CARD_LABELS)}


def usage_page(request: Request) -> Response:
    try:
        days = days_parameter(request.query_params)
    except BadRequest as exc:
        return _bad_request(request, exc)
    context = context_of(request)
    usage = context.usage(days)
    suggestions = suggest_thresholds(context.store.exceptions.marks())
    charts = {
        key: bar_chart([(day["day"], day[key]) for day in usage["days"]])
        for key in ("cloud_calls", "alerts")
    }
    return render(
        request,
        "usage.html",
        section="Usage",
        title="Usage",
        usage=usage,
        charts=charts,
        days=days,
        suggestions=suggestions,
    )


def config_page(request: Request) -> Response:
    dump = yaml.safe_dump(
        context_of(request).config.masked_dump(), sort_keys=False, allow_unicode=True
    )
    return render(request, "config.html", section="Config", title="Configuration", dump=dump)


def snapshot(request: Request) -> Response:
    return _picture(request, thumbnail=False)


def thumbnail(request: Request) -> Response:
    return _picture(request, thumbnail=True)


def clip(request: Request) -> Response:
    """A video clip kept with its event: played by the page when an MP4, else downloaded."""
    event = context_of(request).store.event(request.path_params["event_id"])
    name = (event or {}).get("clip") or ""
    media_type = CLIP_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")
    return _picture(request, thumbnail=False, clip=True, media_type=media_type)


def _picture(
    request: Request, *, thumbnail: bool, clip: bool = False, media_type: str = "image/jpeg"
) -> Response:
    # The route only matches a number: the file is looked up by event id, never by a path.
    store, event_id = context_of(request).store, request.path_params["event_id"]
    try:
        picture = (
            event_thumbnail(store, event_id) if thumbnail else store.snapshot(event_id, clip=clip)
        )
    except OSError as exc:  # shared storage unreachable: the picture is still there
        log.warning("Cannot serve a picture: %s", exc)
        raise HTTPException(503, "The picture cannot be read right now; try again.") from None
    if picture is None:
        raise HTTPException(404, f"No {'clip' if clip else 'picture'} for this event.")
    headers = {"Cache-Control": "private, max-age=86400"}
    if isinstance(picture, Path):
        return FileResponse(picture, media_type=media_type, headers=headers)
    return Response(picture, media_type=media_type, headers=headers)


def _bad_request(request: Request, problem: BadRequest) -> Response:
    return render(request, "error.html", 400, title="Bad request", message=str(problem))


def _query(params: dict[str, Any]) -> str:
    return "?" + urlencode(params) if params else "/"


routes = [
    Route("/", events_page, name="events"),
    Route("/events/{event_id:event_id}", event_page, name="event"),
    Route("/cameras", cameras_page, name="cameras"),
    Route("/usage", usage_page, name="usage"),
    Route("/config", config_page, name="config"),
    Route("/snapshots/{event_id:event_id}.jpg", snapshot, name="snapshot"),
    Route("/snapshots/{event_id:event_id}_thumb.jpg", thumbnail, name="thumbnail"),
    Route("/clips/{event_id:event_id}", clip, name="clip"),
]
