"""Everything kept: the database (one writer, parallel readers), the event history with its
pictures, and the SQL of what the filters remember. No decisions are made here."""

from ipcam_analysis.store.camera_events import CameraEventStore
from ipcam_analysis.store.database import DATABASE_FILE, Database, local_iso
from ipcam_analysis.store.events import (
    PAGE_SIZE,
    THUMBNAIL_WIDTH,
    EventFilter,
    EventRecord,
    EventStore,
)
from ipcam_analysis.store.memory import FilterMemory

__all__ = [
    "DATABASE_FILE",
    "PAGE_SIZE",
    "THUMBNAIL_WIDTH",
    "CameraEventStore",
    "Database",
    "EventFilter",
    "EventRecord",
    "EventStore",
    "FilterMemory",
    "local_iso",
]
