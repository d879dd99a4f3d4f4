"""Uploads in flight: the files cameras sent (or the bytes they sent, written here), copied to
shared storage when there is one, read for analysis and removed once handled."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path, PurePosixPath

from ipcam_analysis.store.storage import Storage, remove_file_and_empty_folders
from ipcam_analysis.values import Upload

log = logging.getLogger(__name__)

UPLOADS = "uploads"  # the key prefix of uploads in shared storage
FOLDER_ATTEMPTS = 5  # see write_new_file


def share_upload(storage: Storage, upload: Upload, data: bytes | None = None) -> Upload:
    """With shared storage, the picture stored at `uploads/<unique>/<name>`, where any node's
    workers read it: `data`, or else the received file's bytes. Done before the queue row is
    committed, so a camera's upload is acknowledged only once stored. Raises OSError when the
    storage cannot take it."""
    if not storage.shared:
        return upload
    # The camera's file name: the received file's may be an in-flight one (ingest/ftp_files).
    name = PurePosixPath(upload.original_name or upload.path.name).name
    key = f"{UPLOADS}/{uuid.uuid4().hex}/{name}"
    storage.write(key, upload.path.read_bytes() if data is None else data)
    return replace(upload, stored_key=key)


def write_new_file(path: Path, data: bytes) -> None:
    """Write `path`, a unique name (never over another upload), in its day folder, and fsync it
    and the folder: it is acknowledged once queued, so it must outlive a power cut. The clean-up
    after an analysed upload removes that folder when it is empty: if it does so between the
    mkdir and the open, the folder is made again (FOLDER_ATTEMPTS times at most)."""
    for attempt in range(1, FOLDER_ATTEMPTS + 1):
        try:
            # mkdir's exist_ok check races with the clean-up too: a folder found existing,
            # then gone before it is checked, is FileExistsError.
            path.parent.mkdir(parents=True, exist_ok=True)
            file = open(path, "xb")  # noqa: SIM115 (written below, once it is open)
        except (FileNotFoundError, FileExistsError):
            if attempt == FOLDER_ATTEMPTS or path.exists():
                raise
            continue
        with file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        _sync_folder(path.parent)  # it holds the file now: the clean-up leaves it alone
        return


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def release_local_copy(upload: Upload) -> None:
    """Once queued with a shared copy, the received file is not needed here any more (when
    its source asked for received files to be removed). Never raises: the upload is queued,
    and a camera told otherwise would send it again."""
    if upload.stored_key and upload.remove_when_done:
        try:
            remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)
        except (OSError, ValueError) as exc:
            log.warning("Cannot remove %s, queued from shared storage: %s", upload.path, exc)


def forget_shared_copy(storage: Storage, upload: Upload) -> None:
    """The shared copy of an upload that could not be queued (the camera sends it again)."""
    if upload.stored_key:
        try:
            storage.delete([upload.stored_key])
        except OSError as exc:
            log.warning("Cannot delete %s: %s", upload.stored_key, exc)


def read_upload(storage: Storage, upload: Upload) -> bytes:
    """The picture's bytes; FileNotFoundError when it is gone, another OSError when the
    storage cannot be reached (try again later)."""
    if upload.stored_key:
        return storage.read(upload.stored_key)
    return upload.path.read_bytes()


def remove_upload(storage: Storage, upload: Upload) -> None:
    """Delete a handled upload: its shared copy, or the received file when its source asked
    for it (`remove_files`), then each folder it leaves empty up to, but not including, its home.

    Cameras upload into dated trees (2026-11-23/001/jpg/10/23/...) that would otherwise pile up.
    """
    if upload.stored_key:
        # The item is finished: a copy left behind by an outage is only storage, never
        # analysed again (an expiry rule on `uploads/` clears such rare leftovers).
        forget_shared_copy(storage, upload)
    elif upload.remove_when_done:
        remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)
