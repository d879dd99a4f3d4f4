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


FTP_SESSION = "src/ipcam_analysis/ingest/ftp_session.py"
FTP_FILES = "src/ipcam_analysis/ingest/ftp_files.py"
SMTP = "src/ipcam_analysis/ingest/smtp.py"
HTTP = "src/ipcam_analysis/ingest/http.py"
ALARM = "src/ipcam_analysis/ingest/alarm_frames.py"
APP = "src/ipcam_analysis/service/app.py"
INTAKE = "src/ipcam_analysis/service/intake.py"
PROCESSES = "src/ipcam_analysis/service/processes.py"
PIPELINE = "src/ipcam_analysis/service/pipeline.py"
DETECTION = "src/ipcam_analysis/service/detection.py"
DELIVERY = "src/ipcam_analysis/service/delivery.py"
GATES = "src/ipcam_analysis/service/decisions.py"
QUEUE = "src/ipcam_analysis/store/queue.py"
WORKERS = "src/ipcam_analysis/service/worker_pool.py"
STORAGE = "src/ipcam_analysis/store/storage.py"
EMAIL = "src/ipcam_analysis/notify/email.py"
WEB_APP = "src/ipcam_analysis/web/app.py"
WEB_AUTH = "src/ipcam_analysis/web/auth.py"

EDGES = "tests/test_promises_edges.py"
ACKS = "tests/test_promises_ingest.py"
WINDOW = "tests/test_ingest_window.py"

POSTGRES = "src/ipcam_analysis/store/postgres.py"
DECISIONS = "tests/test_promises_decisions.py"
SHARED = "postgresql-s3"
CAMERA_LOCK = "with self._memory.atomically(camera_key(camera.name)):"
DECIDED_AND_SAVED = """\
                if decision.alert:
                    self._queue.save_decision(item.id, decision, progress.filtered)
        if turn.wait:
"""
# The same decision saved after the camera's transaction has committed.
SAVED_APART = """\
        if turn.decides and decision.alert:
            self._queue.save_decision(item.id, decision, progress.filtered)
        if turn.wait:
"""

CLAIMS = "tests/test_promises_claims.py"
CRASH = "tests/test_crash.py"

RETRIES = "tests/test_promises_retries.py"
NOTIFIERS = "tests/test_notifiers_service.py"

# pyftpdlib's own hook: it runs after the data channel has replied.
QUEUE_ON_FILE_RECEIVED = """

    def on_file_received(self, file: str) -> None:
        self.queue_received_file(file)
"""

MUTANTS: list[Mutant] = [
    # --- ingest: a camera is answered only once its upload's row is committed ------------------
    Mutant(
        "ftps-queue-after-226",
        "FTPS: no 226 before the queue row",
        (
            Edit(
                FTP_FILES,
                "class CameraTlsDTPHandler(QueueBeforeReplyMixin, TLS_DTPHandler):",
                "class CameraTlsDTPHandler(TLS_DTPHandler):",
            ),
            Edit(
                FTP_SESSION,
                "    dtp_handler = CameraTlsDTPHandler\n",
                "    dtp_handler = CameraTlsDTPHandler\n" + QUEUE_ON_FILE_RECEIVED,
            ),
        ),
        (f"{ACKS}::test_no_ftps_226_before_the_upload_is_queued",),
    ),
    Mutant(
        "ftp-queue-after-226",
        "FTP: no 226 before the queue row",
        (
            Edit(
                FTP_FILES,
                "class CameraDTPHandler(QueueBeforeReplyMixin, DTPHandler):",
                "class CameraDTPHandler(DTPHandler):",
            ),
            Edit(
                FTP_SESSION,
                "    dtp_handler = CameraDTPHandler\n",
                "    dtp_handler = CameraDTPHandler\n" + QUEUE_ON_FILE_RECEIVED,
            ),
        ),
        (f"{WINDOW}::test_no_226_before_the_upload_is_queued",),
    ),
    Mutant(
        "smtp-250-before-commit",
        "SMTP: no 250 after DATA before the pictures' queue rows",
        (
            Edit(
                SMTP,
                "ids = await loop.run_in_executor(self._queueing, self.queue_mail, camera, ip, message)",
                "ids: list[int] = []\n"
                "            loop.run_in_executor(self._queueing, self.queue_mail, camera, ip, message)",
            ),
        ),
        (f"{ACKS}::test_no_smtp_250_before_the_pictures_are_queued",),
    ),
    Mutant(
        "ftp-226-for-an-upload-not-queued",
        "FTP: an upload the queue cannot take is refused (451), not acknowledged",
        (Edit(FTP_FILES, "self._resp = (refusal, pyftpdlib_logger.warning)", "pass"),),
        (
            "tests/test_ingest_ftp.py::"
            "test_an_upload_the_queue_cannot_take_is_answered_451_and_the_server_carries_on",
        ),
    ),
    Mutant(
        "ftp-stor-ignores-admission",
        "FTP: no room (disk, queue) refuses an upload before any byte",
        (
            Edit(
                FTP_SESSION,
                "return None if self._refused() else super().ftp_STOR(file, mode)",
                "return super().ftp_STOR(file, mode)",
            ),
        ),
        ("tests/test_disk_full.py::test_min_free_mb_refuses_before_any_byte_is_written",),
    ),
    Mutant(
        "http-201-before-commit",
        "HTTP: no 201 before the queue row",
        (
            Edit(
                HTTP,
                "item_id = await run_in_threadpool(self._queue, Received(upload, picture.data))",
                "item_id = 0\n"
                "            asyncio.get_running_loop().run_in_executor("
                "None, self._queue, Received(upload, picture.data))",
            ),
        ),
        (f"{WINDOW}::test_no_201_before_the_upload_is_queued",),
    ),
    Mutant(
        "intake-keeps-files-of-a-refused-batch",
        "uploads the queue refuses leave no copy: the camera sends them again, analysed once",
        (
            Edit(
                INTAKE,
                "                remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)",
                "                pass",
            ),
        ),
        ("tests/test_intake.py::test_a_batch_the_queue_refuses_leaves_no_copy_anywhere",),
    ),
    Mutant(
        "intake-writes-bytes-locally-with-shared-storage",
        "with shared storage, bytes held in memory are sent there, never written here first",
        (
            Edit(
                INTAKE,
                "if data is None or self._storage.shared:",
                "if data is None:",
            ),
        ),
        ("tests/test_intake.py::test_bytes_go_to_shared_storage_as_they_are_and_no_file_is_made",),
    ),
    # --- gates: a camera's decisions as one upload at a time, with any number of workers ----------
    Mutant(
        "cooldown-outside-the-camera-lock",
        "two workers deciding at once: one alert in a cooldown",
        (Edit(PIPELINE, CAMERA_LOCK, "with self._memory.atomically():"),),
        (f"{DECISIONS}::test_two_workers_deciding_at_once_send_one_alert_in_a_cooldown",),
        SHARED,
    ),
    Mutant(
        "cooldown-outside-a-transaction",
        "a cooldown decided and remembered in one transaction",
        (Edit(PIPELINE, CAMERA_LOCK, 'with __import__("contextlib").nullcontext():'),),
        (f"{DECISIONS}::test_two_workers_deciding_at_once_send_one_alert_in_a_cooldown",),
        SHARED,
    ),
    Mutant(
        "advisory-lock-that-does-not-wait",
        "a decision waits for the camera's lock",
        (Edit(POSTGRES, "SELECT pg_advisory_xact_lock(", "SELECT pg_try_advisory_xact_lock("),),
        (f"{DECISIONS}::test_two_workers_deciding_at_once_send_one_alert_in_a_cooldown",),
        SHARED,
    ),
    Mutant(
        "budget-outside-its-lock",
        "two workers reserving at once never overspend",
        (
            Edit(
                GATES,
                "with self._memory.atomically(BUDGET_KEY):",
                "with self._memory.atomically():",
            ),
        ),
        (f"{DECISIONS}::test_two_workers_reserving_at_once_make_one_call_on_a_budget_of_one",),
        SHARED,
    ),
    Mutant(
        "decision-saved-apart-from-its-memories",
        "a crash keeps the remembered alert and its decision both, or neither",
        (Edit(PIPELINE, DECIDED_AND_SAVED, SAVED_APART),),
        (f"{DECISIONS}::test_sigkill_between_the_alert_memory_and_its_decision_keeps_neither",),
        SHARED,
    ),
    Mutant(
        "retried-frame-is-a-repeat-of-itself",
        "a retried upload is analysed, not taken for a repeated frame",
        (Edit(GATES, "if last is not None and last[1] != item_id:", "if last is not None:"),),
        (f"{RETRIES}::test_a_retried_upload_is_not_a_repeat_of_itself_nor_paid_twice",),
    ),
    Mutant(
        "failed-cloud-call-kept-on-the-budget",
        "a call that failed is not paid for",
        (Edit(DETECTION, "calls.settle(now)\n            raise", "raise"),),
        (f"{RETRIES}::test_a_retried_upload_is_not_a_repeat_of_itself_nor_paid_twice",),
    ),
    Mutant(
        "retry-decides-again",
        "a retry sends the alert decided before, not suppressed by its own cooldown",
        (Edit(PIPELINE, "if item.decision is not None:", "if False:"),),
        (
            "tests/test_concurrency.py::test_a_retried_alert_is_sent_not_suppressed_by_its_own_cooldown",
        ),
    ),
    Mutant(
        "retry-pays-the-cloud-again",
        "a retry reuses the saved detection",
        (Edit(PIPELINE, "if progress.detection is None:", "if True:"),),
        ("tests/test_service.py::test_mail_outage_retries_without_paying_rekognition_again",),
    ),
    # --- delivery: each channel sends an alert once ------------------------------------------------
    Mutant(
        "retry-sends-again-where-it-was-sent",
        "a retry skips the channels that already sent the alert",
        (Edit(DELIVERY, "if notifier.name in item.notified:", "if False:"),),
        (
            f"{NOTIFIERS}::test_webhook_refusing_then_accepting_gets_the_alert_and_email_is_sent_once",
        ),
    ),
    Mutant(
        "sent-channel-not-recorded",
        "a channel that sent is recorded at once",
        (Edit(DELIVERY, "self._queue.mark_notified(item.id, notifier.name)", "pass"),),
        (
            f"{NOTIFIERS}::test_webhook_refusing_then_accepting_gets_the_alert_and_email_is_sent_once",
        ),
    ),
    # --- queue: claims, leases, give-backs ---------------------------------------------------------
    Mutant(
        "lease-never-renewed",
        "a worker slower than its lease keeps its item",
        (Edit(WORKERS, "self._queue.renew_leases()", "self._queue.depth()"),),
        (f"{CLAIMS}::test_an_item_held_longer_than_its_lease_stays_with_its_worker",),
    ),
    Mutant(
        "lease-renewed-after-it-ran-out",
        "a lease is renewed well within its length",
        (
            Edit(
                WORKERS,
                "self._stopping.wait(self._queue.lease_seconds / 3)",
                "self._stopping.wait(self._queue.lease_seconds * 3)",
            ),
        ),
        (f"{CLAIMS}::test_an_item_held_longer_than_its_lease_stays_with_its_worker",),
    ),
    Mutant(
        "claim-takes-over-a-live-lease",
        "only a claim whose lease ran out is taken over",
        (
            Edit(
                QUEUE,
                "WHERE state = 'working' AND COALESCE(lease_until, 0) < $1",
                "WHERE state = 'working' AND COALESCE(lease_until, 0) > $1",
            ),
        ),
        (f"{CLAIMS}::test_an_item_held_longer_than_its_lease_stays_with_its_worker",),
    ),
    Mutant(
        "restart-keeps-its-own-claims",
        "a restarting node gives back its claims before it serves",
        (Edit(APP, 'self.queue.recover(f"{self.config.node_name}/")', "pass"),),
        (f"{CLAIMS}::test_a_restarting_node_gives_back_its_claims_before_it_serves",),
    ),
    Mutant(
        "dead-process-claims-kept",
        "a killed worker process's claims are given back",
        (Edit(PROCESSES, "self._give_back(number)", "pass"),),
        (f"{CLAIMS}::test_a_killed_worker_process_gives_back_its_claims_and_only_its_own",),
    ),
    Mutant(
        "dead-process-gives-back-the-whole-node",
        "only the dead process's claims are given back",
        (
            Edit(
                PROCESSES,
                "UploadQueue(database).recover(_owner(self._config, number))",
                'UploadQueue(database).recover(f"{self._config.node_name}/")',
            ),
        ),
        (f"{CLAIMS}::test_a_killed_worker_process_gives_back_its_claims_and_only_its_own",),
    ),
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
        "http-any-password",
        "a camera's HTTP password is checked",
        (
            Edit(
                HTTP,
                "return name if expected and matches else None",
                "return name if expected else None",
            ),
        ),
        ("tests/test_ingest_http.py::test_failed_logins_are_answered_later_and_later",),
    ),
    Mutant(
        "smtp-any-password",
        "a camera's SMTP password is checked",
        (Edit(SMTP, "if expected is None or not matches:", "if expected is None:"),),
        ("tests/test_ingest_smtp.py::test_bad_login_is_535_after_the_throttle",),
    ),
    Mutant(
        "ftp-any-password",
        "a camera's FTP password is checked",
        (
            Edit(
                FTP_SESSION,
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
