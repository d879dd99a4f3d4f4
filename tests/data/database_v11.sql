CREATE TABLE budget_notices (
        period TEXT NOT NULL,
        scope TEXT NOT NULL,
        level TEXT NOT NULL,
        PRIMARY KEY (period, scope, level)
    );
CREATE TABLE burst_frames (
        burst_id TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        strength REAL NOT NULL,
        decided_at REAL NOT NULL,
        alerted INTEGER NOT NULL DEFAULT 0, labels TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (burst_id, item_id)
    );
CREATE TABLE camera_error_streaks (
        camera TEXT PRIMARY KEY,
        since REAL NOT NULL
    );
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
CREATE TABLE camera_frames (
        camera TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        seen_at REAL NOT NULL
    , item_id INTEGER);
CREATE TABLE camera_sightings (
        camera TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        labels TEXT NOT NULL,
        decided_at REAL NOT NULL,
        PRIMARY KEY (camera, item_id)
    );
CREATE TABLE cameras (
        name TEXT PRIMARY KEY,
        last_upload REAL,
        last_alert REAL,
        last_error TEXT,
        last_error_at REAL,
        last_snapshot_event INTEGER
    , last_remote_ip TEXT);
CREATE TABLE cloud_calls (
        day TEXT NOT NULL,
        camera TEXT NOT NULL,
        calls INTEGER NOT NULL,
        PRIMARY KEY (day, camera)
    );
CREATE TABLE cooldowns (
        camera TEXT NOT NULL,
        label TEXT NOT NULL COLLATE NOCASE,
        last_alert REAL NOT NULL,
        PRIMARY KEY (camera, label)
    );
CREATE TABLE event_labels (
        event_id INTEGER NOT NULL,
        name TEXT NOT NULL COLLATE NOCASE,
        confidence REAL NOT NULL,
        triggered INTEGER NOT NULL
    );
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
    , source TEXT NOT NULL DEFAULT 'ftp', note TEXT NOT NULL DEFAULT '', burst_id TEXT, burst_size INTEGER NOT NULL DEFAULT 1, clip TEXT);
CREATE TABLE learned_exception_matches (
        exception_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        matched_at REAL NOT NULL,
        PRIMARY KEY (exception_id, item_id)
    );
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
    , source TEXT NOT NULL DEFAULT 'ftp', home TEXT, remove_when_done INTEGER NOT NULL DEFAULT 0, decision TEXT, claimed_by TEXT, note TEXT NOT NULL DEFAULT '', burst_id TEXT, burst_size INTEGER NOT NULL DEFAULT 1, lease_until REAL, stored_key TEXT);
CREATE INDEX events_camera ON events (camera, id);
CREATE INDEX events_outcome ON events (outcome, id);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_with_snapshot ON events (id) WHERE snapshot IS NOT NULL;
CREATE INDEX event_labels_name ON event_labels (name, event_id);
CREATE UNIQUE INDEX event_labels_event ON event_labels (event_id, name);
CREATE INDEX stationary_camera ON stationary_objects (camera, label);
CREATE INDEX events_burst ON events (burst_id, id) WHERE burst_id IS NOT NULL;
CREATE INDEX camera_events_camera ON camera_events (camera, id);
CREATE INDEX camera_events_received ON camera_events (received_at);
CREATE INDEX uploads_working ON uploads (state, lease_until);
CREATE INDEX uploads_due ON uploads (state, next_attempt_at, id);
CREATE INDEX learned_exceptions_camera ON learned_exceptions (camera, id);
