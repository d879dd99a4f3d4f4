"""The schema, as migrations written once for both engines (PostgreSQL reads them through
`store.postgres.postgres_ddl`)."""

# Each entry moves the schema one version up; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        path TEXT NOT NULL,
        original_name TEXT NOT NULL,
        remote_ip TEXT NOT NULL,
        received_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        detection TEXT,
        notified TEXT NOT NULL DEFAULT '[]',
        outcome TEXT,
        finished_at REAL
    );
    CREATE INDEX uploads_ready ON uploads (state, next_attempt_at);
    CREATE TABLE camera_error_streaks (
        camera TEXT PRIMARY KEY,
        since REAL NOT NULL
    );
    """,
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        received_at REAL NOT NULL,
        original_name TEXT NOT NULL,
        file_size INTEGER,
        width INTEGER,
        height INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        detector TEXT,
        detector_ms REAL,
        cloud_calls INTEGER NOT NULL DEFAULT 0,
        labels TEXT NOT NULL DEFAULT '[]',
        triggered TEXT NOT NULL DEFAULT '[]',
        notifications TEXT NOT NULL DEFAULT '[]',
        snapshot TEXT,
        thumbnail TEXT,
        snapshot_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_camera ON events (camera, id);
    CREATE INDEX events_outcome ON events (outcome, id);
    CREATE INDEX events_received ON events (received_at);
    -- Size retention takes the oldest events that still have pictures.
    CREATE INDEX events_with_snapshot ON events (id) WHERE snapshot IS NOT NULL;
    CREATE TABLE event_labels (
        event_id INTEGER NOT NULL,
        name TEXT NOT NULL COLLATE NOCASE,
        confidence REAL NOT NULL,
        triggered INTEGER NOT NULL
    );
    CREATE INDEX event_labels_name ON event_labels (name, event_id);
    CREATE UNIQUE INDEX event_labels_event ON event_labels (event_id, name);
    CREATE TABLE cameras (
        name TEXT PRIMARY KEY,
        last_upload REAL,
        last_alert REAL,
        last_error TEXT,
        last_error_at REAL,
        last_snapshot_event INTEGER
    );
    """,
    """
    CREATE TABLE camera_frames (
        camera TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        seen_at REAL NOT NULL
    );
    CREATE TABLE stationary_objects (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        label TEXT NOT NULL COLLATE NOCASE,
        left REAL NOT NULL,
        top REAL NOT NULL,
        width REAL NOT NULL,
        height REAL NOT NULL,
        alerted_at REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE INDEX stationary_camera ON stationary_objects (camera, label);
    CREATE TABLE cooldowns (
        camera TEXT NOT NULL,
        label TEXT NOT NULL COLLATE NOCASE,
        last_alert REAL NOT NULL,
        PRIMARY KEY (camera, label)
    );
    CREATE TABLE cloud_calls (
        day TEXT NOT NULL,
        camera TEXT NOT NULL,
        calls INTEGER NOT NULL,
        PRIMARY KEY (day, camera)
    );
    CREATE TABLE budget_notices (
        period TEXT NOT NULL,
        scope TEXT NOT NULL,
        level TEXT NOT NULL,
        PRIMARY KEY (period, scope, level)
    );
    """,
    """
    ALTER TABLE uploads ADD COLUMN source TEXT NOT NULL DEFAULT 'ftp';
    ALTER TABLE uploads ADD COLUMN home TEXT;
    ALTER TABLE uploads ADD COLUMN remove_when_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'ftp';
    """,
    """
    ALTER TABLE uploads ADD COLUMN decision TEXT;
    ALTER TABLE uploads ADD COLUMN claimed_by TEXT;
    ALTER TABLE camera_frames ADD COLUMN item_id INTEGER;
    """,
    # E-mailed snapshots: the message's text, and the pictures that came in one message.
    """
    ALTER TABLE uploads ADD COLUMN note TEXT NOT NULL DEFAULT '';
    ALTER TABLE uploads ADD COLUMN burst_id TEXT;
    ALTER TABLE uploads ADD COLUMN burst_size INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN burst_id TEXT;
    ALTER TABLE events ADD COLUMN burst_size INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX events_burst ON events (burst_id, id) WHERE burst_id IS NOT NULL;
    CREATE TABLE burst_frames (
        burst_id TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        strength REAL NOT NULL,
        decided_at REAL NOT NULL,
        alerted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (burst_id, item_id)
    );
    """,
    # What cameras report themselves (XMeye alarms), and where each camera was last seen.
    """
    CREATE TABLE camera_events (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        remote_ip TEXT NOT NULL,
        received_at REAL NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL,
        channel INTEGER,
        serial_id TEXT NOT NULL,
        camera_time TEXT NOT NULL,
        details TEXT NOT NULL,
        attached INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX camera_events_camera ON camera_events (camera, id);
    CREATE INDEX camera_events_received ON camera_events (received_at);
    ALTER TABLE cameras ADD COLUMN last_remote_ip TEXT;
    """,
    # Many nodes: a claim holds an item only while its owner renews the lease; the picture may
    # live in shared storage (S3) rather than on this machine's disk.
    """
    ALTER TABLE uploads ADD COLUMN lease_until REAL;
    ALTER TABLE uploads ADD COLUMN stored_key TEXT;
    CREATE INDEX uploads_working ON uploads (state, lease_until);
    """,
    # The claim's ORDER BY read from the index at any queue depth: without the id in it,
    # PostgreSQL sorted every waiting row for each claim (bench/claim_cost.py).
    """
    CREATE INDEX uploads_due ON uploads (state, next_attempt_at, id);
    DROP INDEX uploads_ready;
    """,
    # A video clip is kept with its event, beside the picture, under the same retention.
    """
    ALTER TABLE events ADD COLUMN clip TEXT;
    """,
    # What the user taught: boxes marked "not a <label>" on the dashboard, and which uploads
    # each one dropped a detection of (one row per upload, so a retried upload counts once);
    # what each picture of a burst, or of a camera (filters.confirm.wait_seconds), matched,
    # which confirms the weak detections of another.
    """
    CREATE TABLE learned_exceptions (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        label TEXT NOT NULL COLLATE NOCASE,
        left REAL NOT NULL,
        top REAL NOT NULL,
        width REAL NOT NULL,
        height REAL NOT NULL,
        fingerprint TEXT NOT NULL,
        confidence REAL NOT NULL,
        event_id INTEGER NOT NULL,
        marked_at REAL NOT NULL
    );
    CREATE INDEX learned_exceptions_camera ON learned_exceptions (camera, id);
    CREATE TABLE learned_exception_matches (
        exception_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        matched_at REAL NOT NULL,
        PRIMARY KEY (exception_id, item_id)
    );
    ALTER TABLE burst_frames ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE camera_sightings (
        camera TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        labels TEXT NOT NULL,
        decided_at REAL NOT NULL,
        PRIMARY KEY (camera, item_id)
    );
    """,
]
