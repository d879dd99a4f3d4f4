"""The intake: every source's uploads into the queue, those received together in one transaction
and acknowledged only once committed; and at start, the uploads a crash left on disk."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ipcam_analysis.imaging.clips import clip_format
from ipcam_analysis.ingest.admission import UploadAdmission
from ipcam_analysis.ingest.handoff import NotAccepted, Received, Refusal
from ipcam_analysis.ingest.leftovers import find_leftovers
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.store.storage import Storage, remove_file_and_empty_folders
from ipcam_analysis.store.uploads import (
    forget_shared_copy,
    release_local_copy,
    share_upload,
    write_new_file,
)
from ipcam_analysis.values import Upload

log = logging.getLogger(__name__)

# An upload, with its bytes when the source holds them in memory (see Received).
Arrival = tuple[Upload, bytes | None]
CLIP_SIGNATURE_BYTES = 16  # what imaging.clips.clip_format needs to tell a clip


class Intake:
    """What every source hands its uploads to (ingest.handoff.UploadIntake), with the admission
    check it asks before each. `camera_notes(camera, now)` is what the camera reported itself
    just before (its alarm), noted on the uploads; None when no source reports camera events."""

    def __init__(
        self,
        queue: UploadQueue,
        storage: Storage,
        admission: UploadAdmission,
        metrics: Metrics,
        camera_notes: Callable[[str, float], str] | None = None,
    ) -> None:
        self.admission = admission
        self._queue = queue
        self._storage = storage
        self._metrics = metrics
        self._camera_notes = camera_notes

    def refusal(self) -> Refusal | None:
        return self.admission.refusal()

    def recheck_refusal(self) -> None:
        self.admission.recheck()

    def accept(self, uploads: Sequence[Upload | Received]) -> list[int]:
        """The uploads' queue ids, once their rows are committed, all or none. When the queue
        cannot take them, no copy is left (received file, file written from their bytes, shared
        copy) and NotAccepted is raised: the camera, told so, keeps them and sends them again;
        a copy kept here as well would be analysed, and alerted on, twice."""
        arrivals: list[Arrival] = [
            (item.upload, item.data) if isinstance(item, Received) else (item, None)
            for item in uploads
        ]
        try:
            item_ids = self._store_and_queue(self._noted(arrivals))
        except NotAccepted as not_stored:
            self._give_back(arrivals, not_stored, not_stored.__cause__)
            raise
        except Exception as exc:
            not_queued = NotAccepted(Refusal.NOT_QUEUED, str(exc))
            self._give_back(arrivals, not_queued, exc)
            raise not_queued from exc
        for upload, _ in arrivals:
            self._metrics.uploads.labels(upload.camera).inc()
        return item_ids

    def _noted(self, arrivals: list[Arrival]) -> list[Arrival]:
        """The uploads with what their camera reported just before as a note. Looked up only
        with an alarm source: this is FTP's hot path, in its one IO thread."""
        if self._camera_notes is None or not arrivals:
            return arrivals
        first = arrivals[0][0]
        reported = self._camera_notes(first.camera, first.received_at.timestamp())
        if not reported:
            return arrivals
        return [
            (replace(upload, note="\n".join(filter(None, (reported, upload.note)))), data)
            for upload, data in arrivals
        ]

    def _store_and_queue(self, arrivals: list[Arrival]) -> list[int]:
        """Each upload kept where the workers read it (see _kept), then the rows naming them in
        one transaction; a received file copied to shared storage is removed only once all are
        queued. Raises with no shared copy left."""
        kept: list[Upload] = []
        try:
            for upload, data in arrivals:
                kept.append(self._kept(upload, data))
            item_ids = self._queue.put_many(kept)
        except BaseException:
            for copy in kept:
                forget_shared_copy(self._storage, copy)
            raise
        for copy, (_, data) in zip(kept, arrivals, strict=True):
            if data is None:
                release_local_copy(copy)
        return item_ids

    def _kept(self, upload: Upload, data: bytes | None) -> Upload:
        """With shared storage, the upload stored there (its bytes sent as they are); else the
        received file, written and fsynced first when the source holds its bytes. A clip is
        marked as one: a snapshot of its motion is decided after it (rules/motion.py)."""
        upload = replace(upload, clip=_is_clip(upload.path, data))
        if data is None or self._storage.shared:
            return share_upload(self._storage, upload, data)
        try:
            write_new_file(upload.path, data)
        except OSError as exc:  # a full disk, a folder that cannot be made
            raise NotAccepted(Refusal.NOT_STORED, exc.strerror or str(exc)) from exc
        return upload

    def _give_back(self, arrivals: list[Arrival], refused: NotAccepted, cause: object) -> None:
        """The uploads' files removed (with the folders they leave empty), and why in one line."""
        for upload, _ in arrivals:
            with suppress(OSError, ValueError):
                remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)
        if not arrivals:
            return
        first = arrivals[0][0]
        more = f" and {len(arrivals) - 1} more" if arrivals[1:] else ""
        log.error(
            "Could not %s the upload%s from %s (%s): %s%s (%s)",
            "write" if refused.refusal is Refusal.NOT_STORED else "queue",
            "s" if more else "",
            first.camera,
            first.remote_ip,
            first.original_name,
            more,
            cause,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )

    def find_leftovers(self, root_dir: Path, cameras: list[str], *, homes: bool) -> list[Upload]:
        """Files left in the upload folders by a crash (with `homes`, every file under a
        camera's home that the queue does not hold is unhandled by definition), and in the FTP
        spool. Listed before the listeners start: a file there then is no upload in progress."""
        queued = self._queue.unfinished_paths()
        return list(find_leftovers(root_dir, cameras, queued, homes=homes))

    def queue_leftovers(self, leftovers: list[Upload]) -> None:
        """The leftovers queued one by one; one that cannot be waits on disk for the next start."""
        found = 0
        for upload in leftovers:
            if not _unchanged_since_listed(upload):
                continue  # received again since: its source queues the new one
            try:
                self._store_and_queue([(upload, None)])
            except OSError as exc:  # shared storage unreachable
                log.warning("Cannot queue %s found on disk: %s", upload.path, exc)
                continue
            found += 1
        if found:
            log.info("Queued %d upload(s) found on disk from before the last shutdown", found)


def _unchanged_since_listed(upload: Upload) -> bool:
    """False when a camera has sent a file of the same name since it was listed (or it is gone)."""
    try:
        modified = upload.path.stat().st_mtime
    except OSError:
        return False
    # Made the way find_leftovers made received_at, so an untouched file compares equal.
    return datetime.fromtimestamp(modified).astimezone() == upload.received_at


def _is_clip(path: Path, data: bytes | None) -> bool:
    """Whether the upload is a video clip, by its first bytes, as the workers will tell it."""
    if data is None:
        try:
            with path.open("rb") as file:
                data = file.read(CLIP_SIGNATURE_BYTES)
        except OSError:  # it is gone: the workers record it missing
            return False
    return clip_format(data[:CLIP_SIGNATURE_BYTES]) is not None
