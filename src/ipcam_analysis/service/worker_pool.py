"""The pool of analysis threads: each claims queued uploads and runs them through the pipeline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from ipcam_analysis.detect import Detector
from ipcam_analysis.service.pipeline import Pipeline
from ipcam_analysis.store import STORAGE_ERRORS
from ipcam_analysis.store.queue import QueuedItem, UploadQueue

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
INTERNAL_ERROR = "internal error (see the log)"
# A database or disk that cannot be written (a full disk) is no fault of the upload: it is tried
# again after this delay, doubling per attempt up to the maximum (a detection the database could
# not keep is paid for again), for as long as it takes.
STORAGE_RETRY_SECONDS = 5.0
MAX_STORAGE_RETRY_SECONDS = 60.0


class WorkerPool:
    """N threads, each with its own detector (detectors are not shared across threads)."""

    def __init__(
        self,
        size: int,
        queue: UploadQueue,
        pipeline: Pipeline,
        make_detector: Callable[[str], Detector],
        kinds: Iterable[str],
    ) -> None:
        self._size = size
        self._queue = queue
        self._pipeline = pipeline
        self._make_detector = make_detector
        self._kinds = tuple(dict.fromkeys(kinds))
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Build every configured detector first, so a broken one stops start-up with its message."""
        detectors = [WorkerDetectors(self._make_detector, self._kinds) for _ in range(self._size)]
        for number, detector in enumerate(detectors):
            thread = threading.Thread(
                target=self._run, args=(detector,), name=f"worker-{number + 1}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        for name, target in (
            ("lease-renewal", self._renew_leases),
            ("put-listener", lambda: self._queue.wait_for_puts(self._stopping)),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; items in progress finish (or, past the timeout, resume at next start)."""
        self._stopping.set()
        self._queue.wake_all()
        for thread in self._threads:
            thread.join(timeout)

    def _renew_leases(self) -> None:
        """Keep this process's claims while it lives, however long a cloud call takes; when it
        dies, they run out and another worker (here or on another node) takes them."""
        while not self._stopping.wait(self._queue.lease_seconds / 3):
            try:
                self._queue.renew_leases()
            except STORAGE_ERRORS as exc:
                log.warning("Cannot renew this worker's claims: %s", exc)

    def _run(self, detectors: WorkerDetectors) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._work_once(detectors)
                except STORAGE_ERRORS as exc:
                    log.error("Cannot use the queue: %s; trying again shortly", exc)
                    self._stopping.wait(STORAGE_RETRY_SECONDS)
                except Exception:
                    # The thread must outlive anything; the queue still holds the work.
                    log.exception("Unexpected error in a worker; it carries on")
                    self._stopping.wait(STORAGE_RETRY_SECONDS)
        finally:
            detectors.close()

    def _work_once(self, detectors: WorkerDetectors) -> None:
        item = self._queue.claim()
        if item is None:
            due = self._queue.seconds_until_next_due()
            wait = IDLE_POLL_SECONDS if due is None else min(due, IDLE_POLL_SECONDS)
            self._queue.wait_for_work(max(wait, 0.01))
            return
        self._process(item, detectors)

    def _process(self, item: QueuedItem, detectors: WorkerDetectors) -> None:
        try:
            self._pipeline.process(item, detectors.get)
        except STORAGE_ERRORS as exc:
            delay = min(STORAGE_RETRY_SECONDS * 2**item.attempts, MAX_STORAGE_RETRY_SECONDS)
            log.error(
                "Cannot record upload %s: %s; trying again in %.0f s",
                item.about,
                exc,
                delay,
            )
            self._give_back(item.id, f"cannot record it ({exc})", delay)
        except Exception:
            # A bug must not lose the upload: retried, then an error event and e-mail.
            log.exception("Unexpected error while processing upload %s", item.about)
            try:
                self._pipeline.failed_unexpectedly(item, INTERNAL_ERROR)
            except Exception:
                log.exception("Cannot record the error of upload %s", item.about)
                self._give_back(item.id, INTERNAL_ERROR, MAX_STORAGE_RETRY_SECONDS)

    def _give_back(self, item_id: int, cause: str, delay_seconds: float) -> None:
        """Return the item to the queue; while the database cannot be written, keep trying (a
        restart would resume it too, as it stays marked as being worked on)."""
        while True:
            try:
                self._queue.retry_later(item_id, cause, delay_seconds)
                return
            except STORAGE_ERRORS as exc:
                log.debug("Cannot give upload (event %d) back yet: %s", item_id, exc)
                if self._stopping.wait(STORAGE_RETRY_SECONDS):
                    return


class WorkerDetectors:
    """One worker's detectors by kind: the configured kinds built at once, others (a budget's
    local fallback) when first needed."""

    def __init__(self, make_detector: Callable[[str], Detector], kinds: Iterable[str]) -> None:
        self._make_detector = make_detector
        self._by_kind = {kind: make_detector(kind) for kind in kinds}

    def get(self, kind: str) -> Detector:
        if kind not in self._by_kind:
            self._by_kind[kind] = self._make_detector(kind)
        return self._by_kind[kind]

    def close(self) -> None:
        for detector in self._by_kind.values():
            detector.close()
