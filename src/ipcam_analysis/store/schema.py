"""The schema, as migrations written once for both engines: each a list of whole statements, in
types both read alike (TEXT, BIGINT, DOUBLE PRECISION: to SQLite, INTEGER and REAL affinity),
with the reserved word `left` quoted. Only the auto-numbered `id` key is spelled per engine.
NOCASE is SQLite's own collation; store/postgres.py creates one of that name first."""


def migrations(auto_id: str) -> list[tuple[str, ...]]:
    """Each entry moves the schema one version up; never change what a released entry makes,
    append a new one. `auto_id` is the engine's `id` key that numbers new rows itself."""
    return [
        (
            f"""CREATE TABLE uploads (
                {auto_id},
                camera TEXT NOT NULL,
                path TEXT NOT NULL,
                original_name TEXT NOT NULL,
                remote_ip TEXT NOT NULL,
                received_at TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending',
                attempts BIGINT NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
                last_error TEXT,
                detection TEXT,
                notified TEXT NOT NULL DEFAULT '[]',
                outcome TEXT,
                finished_at DOUBLE PRECISION
            )""",
            "CREATE INDEX uploads_ready ON uploads (state, next_attempt_at)",
            """CREATE TABLE camera_error_streaks (
                camera TEXT PRIMARY KEY,
                since DOUBLE PRECISION NOT NULL
            )""",
        ),
        (
            f"""CREATE TABLE events (
                {auto_id},
                camera TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                original_name TEXT NOT NULL,
                file_size BIGINT,
                width BIGINT,
                height BIGINT,
                outcome TEXT NOT NULL,
                reason TEXT,
                detector TEXT,
                detector_ms DOUBLE PRECISION,
                cloud_calls BIGINT NOT NULL DEFAULT 0,
                labels TEXT NOT NULL DEFAULT '[]',
                triggered TEXT NOT NULL DEFAULT '[]',
                notifications TEXT NOT NULL DEFAULT '[]',
                snapshot TEXT,
                thumbnail TEXT,
                snapshot_bytes BIGINT NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX events_camera ON events (camera, id)",
            "CREATE INDEX events_outcome ON events (outcome, id)",
            "CREATE INDEX events_received ON events (received_at)",
            # Size retention takes the oldest events that still have pictures.
            "CREATE INDEX events_with_snapshot ON events (id) WHERE snapshot IS NOT NULL",
            """CREATE TABLE event_labels (
                event_id BIGINT NOT NULL,
                name TEXT NOT NULL COLLATE NOCASE,
                confidence DOUBLE PRECISION NOT NULL,
                triggered BIGINT NOT NULL
            )""",
            "CREATE INDEX event_labels_name ON event_labels (name, event_id)",
            "CREATE UNIQUE INDEX event_labels_event ON event_labels (event_id, name)",
            """CREATE TABLE cameras (
                name TEXT PRIMARY KEY,
                last_upload DOUBLE PRECISION,
                last_alert DOUBLE PRECISION,
                last_error TEXT,
                last_error_at DOUBLE PRECISION,
                last_snapshot_event BIGINT
            )""",
        ),
        (
            """CREATE TABLE camera_frames (
                camera TEXT PRIMARY KEY,
                hash TEXT NOT NULL,
                seen_at DOUBLE PRECISION NOT NULL
            )""",
            f"""CREATE TABLE stationary_objects (
                {auto_id},
                camera TEXT NOT NULL,
                label TEXT NOT NULL COLLATE NOCASE,
                "left" DOUBLE PRECISION NOT NULL,
                top DOUBLE PRECISION NOT NULL,
                width DOUBLE PRECISION NOT NULL,
                height DOUBLE PRECISION NOT NULL,
                alerted_at DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX stationary_camera ON stationary_objects (camera, label)",
            """CREATE TABLE cooldowns (
                camera TEXT NOT NULL,
                label TEXT NOT NULL COLLATE NOCASE,
                last_alert DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (camera, label)
            )""",
            """CREATE TABLE cloud_calls (
                day TEXT NOT NULL,
                camera TEXT NOT NULL,
                calls BIGINT NOT NULL,
                PRIMARY KEY (day, camera)
            )""",
            """CREATE TABLE budget_notices (
                period TEXT NOT NULL,
                scope TEXT NOT NULL,
                level TEXT NOT NULL,
                PRIMARY KEY (period, scope, level)
            )""",
        ),
        (
            "ALTER TABLE uploads ADD COLUMN source TEXT NOT NULL DEFAULT 'ftp'",
            "ALTER TABLE uploads ADD COLUMN home TEXT",
            "ALTER TABLE uploads ADD COLUMN remove_when_done BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'ftp'",
        ),
        (
            "ALTER TABLE uploads ADD COLUMN decision TEXT",
            "ALTER TABLE uploads ADD COLUMN claimed_by TEXT",
            "ALTER TABLE camera_frames ADD COLUMN item_id BIGINT",
        ),
        # E-mailed snapshots: the message's text, and the pictures that came in one message.
        (
            "ALTER TABLE uploads ADD COLUMN note TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE uploads ADD COLUMN burst_id TEXT",
            "ALTER TABLE uploads ADD COLUMN burst_size BIGINT NOT NULL DEFAULT 1",
            "ALTER TABLE events ADD COLUMN note TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN burst_id TEXT",
            "ALTER TABLE events ADD COLUMN burst_size BIGINT NOT NULL DEFAULT 1",
            "CREATE INDEX events_burst ON events (burst_id, id) WHERE burst_id IS NOT NULL",
            """CREATE TABLE burst_frames (
                burst_id TEXT NOT NULL,
                item_id BIGINT NOT NULL,
                strength DOUBLE PRECISION NOT NULL,
                decided_at DOUBLE PRECISION NOT NULL,
                alerted BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (burst_id, item_id)
            )""",
        ),
        # What cameras report themselves (XMeye alarms), and where each camera was last seen.
        (
            f"""CREATE TABLE camera_events (
                {auto_id},
                camera TEXT NOT NULL,
                remote_ip TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                event TEXT NOT NULL,
                status TEXT NOT NULL,
                channel BIGINT,
                serial_id TEXT NOT NULL,
                camera_time TEXT NOT NULL,
                details TEXT NOT NULL,
                attached BIGINT NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX camera_events_camera ON camera_events (camera, id)",
            "CREATE INDEX camera_events_received ON camera_events (received_at)",
            "ALTER TABLE cameras ADD COLUMN last_remote_ip TEXT",
        ),
        # Many nodes: a claim holds an item only while its owner renews the lease; the picture
        # may live in shared storage (S3) rather than on this machine's disk.
        (
            "ALTER TABLE uploads ADD COLUMN lease_until DOUBLE PRECISION",
            "ALTER TABLE uploads ADD COLUMN stored_key TEXT",
            "CREATE INDEX uploads_working ON uploads (state, lease_until)",
        ),
        # The claim's ORDER BY read from the index at any queue depth: without the id in it,
        # PostgreSQL sorted every waiting row for each claim (bench/claim_cost.py).
        (
            "CREATE INDEX uploads_due ON uploads (state, next_attempt_at, id)",
            "DROP INDEX uploads_ready",
        ),
        # A video clip is kept with its event, beside the picture, under the same retention.
        ("ALTER TABLE events ADD COLUMN clip TEXT",),
        # What the user taught: boxes marked "not a <label>" on the dashboard, and which uploads
        # each one dropped a detection of (one row per upload, so a retried upload counts once);
        # what each picture of a burst, or of a camera (filters.confirm.wait_seconds), matched,
        # which confirms the weak detections of another.
        (
            f"""CREATE TABLE learned_exceptions (
                {auto_id},
                camera TEXT NOT NULL,
                label TEXT NOT NULL COLLATE NOCASE,
                "left" DOUBLE PRECISION NOT NULL,
                top DOUBLE PRECISION NOT NULL,
                width DOUBLE PRECISION NOT NULL,
                height DOUBLE PRECISION NOT NULL,
                fingerprint TEXT NOT NULL,
                confidence DOUBLE PRECISION NOT NULL,
                event_id BIGINT NOT NULL,
                marked_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX learned_exceptions_camera ON learned_exceptions (camera, id)",
            """CREATE TABLE learned_exception_matches (
                exception_id BIGINT NOT NULL,
                item_id BIGINT NOT NULL,
                matched_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (exception_id, item_id)
            )""",
            "ALTER TABLE burst_frames ADD COLUMN labels TEXT NOT NULL DEFAULT '[]'",
            """CREATE TABLE camera_sightings (
                camera TEXT NOT NULL,
                item_id BIGINT NOT NULL,
                labels TEXT NOT NULL,
                decided_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (camera, item_id)
            )""",
        ),
        # A camera's uploads by when they came, and an alerting clip's length: a snapshot and a
        # clip of one motion alert once.
        (
            "ALTER TABLE uploads ADD COLUMN received_ts DOUBLE PRECISION",
            "ALTER TABLE uploads ADD COLUMN clip_seconds DOUBLE PRECISION",
            "ALTER TABLE uploads ADD COLUMN clip BIGINT NOT NULL DEFAULT 0",
            "CREATE INDEX uploads_camera_received ON uploads (camera, received_ts)",
        ),
    ]


SCHEMA_VERSION = len(migrations(auto_id=""))  # the version a new database gets
