"""The lists' thumbnails, drawn from an event's kept picture when a page first asks for one.

Most pictures are never looked at. Drawing each thumbnail as its upload was recorded cost every
upload about 1.3 ms of CPU (the reduce, the boxes, the encode, one more file), a twelfth of an
alert's; now a page pays it once for the thumbnails it shows, and the browser keeps them a day.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ipcam_analysis.imaging import (
    THUMBNAIL_WIDTH,
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    thumbnail_jpeg,
)
from ipcam_analysis.store import EventStore
from ipcam_analysis.values import MatchedLabel, label_from_dict

log = logging.getLogger(__name__)


def event_thumbnail(store: EventStore, event_id: int) -> Path | bytes | None:
    """The event's thumbnail: the file an older version drew, or one drawn now from its
    picture; None when it has no picture. Raises OSError when shared storage cannot be reached."""
    drawn_before = store.snapshot(event_id, thumbnail=True)
    if drawn_before is not None:
        return drawn_before
    picture = store.snapshot(event_id)
    event = store.event(event_id)
    if picture is None or event is None:
        return None
    try:
        data = picture.read_bytes() if isinstance(picture, Path) else picture
    except FileNotFoundError:  # removed by retention since it was looked up
        return None
    try:
        snapshot = decode_snapshot(data, at_least_width=THUMBNAIL_WIDTH)
    except (NotAnImageError, CorruptImageError) as exc:  # kept damaged: no thumbnail, no error
        log.warning("Cannot draw the thumbnail of event %d: %s", event_id, exc)
        return None
    return thumbnail_jpeg(snapshot, triggered_labels(event))


def triggered_labels(event: dict[str, Any]) -> list[MatchedLabel]:
    """The labels that made the event alert, under their own names, as the picture boxes them."""
    triggered = set(event["triggered"])
    labels = (label_from_dict(data) for data in event["labels"])
    return [MatchedLabel(label, label.name) for label in labels if label.name in triggered]
