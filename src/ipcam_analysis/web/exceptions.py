"""The dashboard's two POSTs: "Not a Person" on an event's box (a learned exception for its
camera) and its undo.

Both sit behind the login like every page. They are safe from cross-site requests because they
accept only what the dashboard's own script sends: a JSON body with the X-Requested-By header.
A form on another site can send neither, and a script on another site cannot send them without
a CORS preflight, which this server never answers with a permission. A browser's Sec-Fetch-Site
saying the request came from another site is refused as well."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ipcam_analysis.imaging import (
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    region_fingerprint,
)
from ipcam_analysis.store import EventStore
from ipcam_analysis.values import Box
from ipcam_analysis.web.context import context_of

log = logging.getLogger(__name__)

REQUESTED_BY_HEADER = "X-Requested-By"
REQUESTED_BY = "ipcam-analysis"  # what static/actions.js sends
MAX_BODY_BYTES = 4096


async def learn_exception(request: Request) -> Response:
    """`{"label": "Person", "box": 0}`: the event's first Person box is not a Person."""
    body = await _dashboard_json(request)
    label, index = body.get("label"), body.get("box")
    if not isinstance(label, str) or not isinstance(index, int) or isinstance(index, bool):
        raise HTTPException(400, 'Send {"label": <name>, "box": <number>}.')
    store = context_of(request).store
    event_id = request.path_params["event_id"]
    learned = await run_in_threadpool(_learn, store, event_id, label, index)
    log.info("Learned: %s on %s is not a %s", learned["where"], learned["camera"], label)
    return JSONResponse(learned)


def _learn(store: EventStore, event_id: int, label_name: str, index: int) -> dict[str, Any]:
    event = store.event(event_id)
    if event is None:
        raise HTTPException(404, "No such event: it may have been removed by retention.")
    label = next((found for found in event["labels"] if found["name"] == label_name), None)
    if label is None or not 0 <= index < len(label["instances"]):
        raise HTTPException(400, f"Event {event_id} has no {label_name} box number {index}.")
    instance = label["instances"][index]
    box = Box(**instance["box"])
    try:
        picture = store.snapshot(event_id)
    except OSError as exc:
        log.warning("Cannot read the picture of event %d: %s", event_id, exc)
        raise HTTPException(503, "The picture cannot be read right now; try again.") from None
    if picture is None:
        raise HTTPException(409, "No picture is kept for this event: nothing to learn from.")
    data = picture.read_bytes() if isinstance(picture, Path) else picture
    try:
        image = decode_snapshot(data).image
    except (NotAnImageError, CorruptImageError) as exc:
        raise HTTPException(409, f"The picture of this event cannot be read ({exc}).") from None
    exception_id = store.exceptions.learn(
        event["camera"],
        label["name"],
        box,
        region_fingerprint(image, box),
        confidence=instance["confidence"],
        event_id=event_id,
        now=time.time(),
    )
    where = f"the box at {box.left:.0%}, {box.top:.0%}"
    return {"id": exception_id, "camera": event["camera"], "label": label["name"], "where": where}


async def forget_exception(request: Request) -> Response:
    """Undo a learned exception: what it matched alerts again."""
    await _dashboard_json(request)
    exception_id = request.path_params["exception_id"]
    store = context_of(request).store
    if not await run_in_threadpool(store.exceptions.forget, exception_id):
        raise HTTPException(404, "No such learned exception: it was already undone.")
    log.info("Learned exception %d undone", exception_id)
    return JSONResponse({"undone": exception_id})


async def _dashboard_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, if the dashboard's own script sent it; else 403 or 400."""
    headers = request.headers
    if headers.get(REQUESTED_BY_HEADER) != REQUESTED_BY or headers.get(
        "sec-fetch-site", "same-origin"
    ) not in ("same-origin", "none"):
        raise HTTPException(403, "Only the dashboard's own pages may do this.")
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "Send JSON.")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, "Too large.")
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise HTTPException(400, "Not JSON.") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "Send a JSON object.")
    return value


routes = [
    Route("/events/{event_id:event_id}/exceptions", learn_exception, methods=["POST"]),
    Route("/exceptions/{exception_id:int}/undo", forget_exception, methods=["POST"]),
]
