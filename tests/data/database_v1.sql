CREATE TABLE camera_error_streaks (
        camera TEXT PRIMARY KEY,
        since REAL NOT NULL
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
    );
CREATE INDEX uploads_ready ON uploads (state, next_attempt_at);
