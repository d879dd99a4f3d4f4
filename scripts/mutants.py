"""The mutants scripts/mutate.py runs: each undoes one promise, realistically (a refactoring that
looks harmless), and names the tests that must then fail. Snippets are exact text of the product;
keep them to lines that carry the promise, so that the list follows the code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    file: str  # relative to the repository
    original: str  # found exactly once
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    why: str  # the promise it breaks
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # node ids; any of them failing catches it
    backend: str = "sqlite"


FTP = "src/ipcam_analysis/ingest/ftp.py"
FTP_FILES = "src/ipcam_analysis/ingest/ftp_files.py"
SMTP = "src/ipcam_analysis/ingest/smtp.py"
HTTP = "src/ipcam_analysis/ingest/http.py"
ALARM = "src/ipcam_analysis/ingest/alarm.py"
APP = "src/ipcam_analysis/app.py"
ANALYSIS = "src/ipcam_analysis/analysis.py"
PIPELINE = "src/ipcam_analysis/pipeline.py"
GATES = "src/ipcam_analysis/gates.py"
QUEUE = "src/ipcam_analysis/queue.py"
WORKERS = "src/ipcam_analysis/workers.py"
STORAGE = "src/ipcam_analysis/store/storage.py"
EMAIL = "src/ipcam_analysis/notify/email.py"
WEB_APP = "src/ipcam_analysis/web/app.py"
WEB_AUTH = "src/ipcam_analysis/web/auth.py"

EDGES = "tests/test_promises_edges.py"

MUTANTS: list[Mutant] = [
    # --- dashboard and camera logins -------------------------------------------------------
    Mutant(
        "camera-events-api-without-login",
        "every dashboard path but /healthz asks for the login",
        (
            Edit(
                WEB_APP,
                'OPEN_PATHS = frozenset({"/healthz"})',
                'OPEN_PATHS = frozenset({"/healthz", "/api/camera_events"})',
            ),
        ),
        (f"{EDGES}::test_every_served_path_but_the_health_check_asks_for_the_login",),
    ),
    Mutant(
        "thumbnails-without-login",
        "pictures are behind the login, thumbnails too",
        (
            Edit(
                WEB_AUTH,
                'if scope["type"] != "http" or scope["path"] in self._open_paths:',
                'if scope["type"] != "http" or scope["path"] in self._open_paths'
                ' or scope["path"].endswith("_thumb.jpg"):',
            ),
        ),
        (f"{EDGES}::test_every_served_path_but_the_health_check_asks_for_the_login",),
    ),
    Mutant(
        "dashboard-any-password-for-the-user",
        "the dashboard's password is checked",
        (Edit(WEB_AUTH, "return name_ok and password_ok", "return name_ok"),),
        ("tests/test_web.py::test_login_is_required_everywhere_but_healthz",),
    ),
    Mutant(
        "ftp-any-password",
        "a camera's FTP password is checked",
        (
            Edit(
                FTP,
                "if not (known and hmac.compare_digest(expected.encode(), password.encode())):",
                "if not known:",
            ),
        ),
        ("tests/test_ingest_ftp.py",),
    ),
    # --- stores -----------------------------------------------------------------------------
    Mutant(
        "s3-key-traversal-guard-removed",
        "a key with `..` never reaches the bucket",
        (Edit(STORAGE, "return self.prefix + checked_key(key)", "return self.prefix + key"),),
        (f"{EDGES}::test_a_tampered_key_never_reaches_the_bucket",),
    ),
    # --- camera input ------------------------------------------------------------------------
    Mutant(
        "alarm-short-frame-unpacked",
        "a frame under 20 bytes starting with 0xFF does no harm",
        (
            Edit(
                ALARM,
                "if len(data) >= HEADER.size and data[0] == 0xFF:",
                'if data[:1] == b"\\xff":',
            ),
        ),
        (f"{EDGES}::test_a_frame_shorter_than_the_header_is_read_as_text",),
    ),
    # --- delivery keys -------------------------------------------------------------------------
    Mutant(
        "message-id-from-the-send-clock",
        "an alert sent again keeps its Message-ID",
        (
            Edit(
                EMAIL,
                'f"ipcam-analysis.event-{alert.event_id}.{camera}.{alert.received_at:%Y%m%d%H%M%S}"',
                'f"ipcam-analysis.event-{alert.event_id}.{camera}.{datetime.now():%Y%m%d%H%M%S}"',
            ),
        ),
        (f"{EDGES}::test_an_alert_sent_again_a_second_later_keeps_its_message_id",),
    ),
]
