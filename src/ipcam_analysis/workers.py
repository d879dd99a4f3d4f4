"""The pool of analysis threads: each claims queued uploads and runs them through the pipeline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from ipcam_analysis.detect import Detector
from ipcam_analysis.pipeline import Pipeline
from ipcam_analysis.queue import UploadQueue

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
# An upload that hits an unexpected exception (a bug) is retried this often, then set aside.
MAX_INTERNAL_ERRORS = 3


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

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; items in progress finish (or, past the timeout, resume at next start)."""
        self._stopping.set()
        self._queue.wake_all()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, detectors: WorkerDetectors) -> None:
        try:
            while not self._stopping.is_set():
                item = self._queue.claim()
                if item is None:
                    due = self._queue.seconds_until_next_due()
                    wait = IDLE_POLL_SECONDS if due is None else min(due, IDLE_POLL_SECONDS)
                    self._queue.wait_for_work(max(wait, 0.01))
                    continue
                try:
                    self._pipeline.process(item, detectors.get)
                except Exception:
                    # A bug must not lose the upload: it goes back for a later attempt.
                    log.exception("Unexpected error while processing upload %d", item.id)
                    if item.attempts + 1 >= MAX_INTERNAL_ERRORS:
                        self._queue.finish(item.id, "error", "internal error (see the log)")
                    else:
                        self._queue.retry_later(item.id, "internal error (see the log)", 60)
        finally:
            detectors.close()


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
