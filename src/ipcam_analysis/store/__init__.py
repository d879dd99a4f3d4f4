"""Everything kept: the database (one writer, parallel readers), the event history with its
pictures, where pictures are kept (files or S3), and the SQL of what the filters remember. No
decisions are made here."""

from ipcam_analysis.store.camera_events import CameraEventStore
from ipcam_analysis.store.camera_history import CameraHistory
from ipcam_analysis.store.database import (
    DATABASE_FILE,
    STORAGE_ERRORS,
    Database,
    DatabaseSettings,
    SqliteDatabase,
    local_iso,
    open_database,
)
from ipcam_analysis.store.events import (
    PAGE_SIZE,
    EventFilter,
    EventRecord,
    EventStore,
)
from ipcam_analysis.store.exceptions import LearnedExceptions
from ipcam_analysis.store.storage import (
    LocalStorage,
    Storage,
    StorageError,
    StorageSettings,
    open_storage,
)

__all__ = [
    "DATABASE_FILE",
    "PAGE_SIZE",
    "STORAGE_ERRORS",
    "CameraEventStore",
    "CameraHistory",
    "Database",
    "DatabaseSettings",
    "EventFilter",
    "EventRecord",
    "EventStore",
    "LearnedExceptions",
    "LocalStorage",
    "SqliteDatabase",
    "Storage",
    "StorageError",
    "StorageSettings",
    "local_iso",
    "open_database",
    "open_storage",
]
