"""Handing received uploads to the queue, as every source does before acknowledging them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from ipcam_analysis.store.storage import remove_file_and_empty_folders
from ipcam_analysis.values import Upload

FOLDER_ATTEMPTS = 5  # see write_new_file

# What a source hands what it received to: the uploads queued together, all or none (one
# transaction), and their committed queue ids returned; raises when the queue cannot take them.
AcceptUploads = Callable[[Sequence[Upload]], list[int]]


def queue_uploads(uploads: Sequence[Upload], accept: AcceptUploads) -> list[int]:
    """The uploads' committed queue ids; when the queue cannot take them, their files are
    deleted (with the folders they leave empty) and the error raised: the source then refuses them instead of acknowledging them.
    The camera keeps the pictures and sends them again (a 4xx reply asks for that); a copy kept
    here as well would be analysed, and alerted on, twice."""
    try:
        return accept(uploads)
    except Exception:
        for upload in uploads:
            with suppress(OSError, ValueError):
                remove_file_and_empty_folders(upload.path, upload.home or upload.path.parent)
        raise


def queue_upload(upload: Upload, accept: AcceptUploads, log: logging.Logger) -> int | None:
    """One upload's committed queue id, or None (logged in one line) when the queue cannot
    take it (its file deleted, see queue_uploads)."""
    try:
        (item_id,) = queue_uploads([upload], accept)
    except Exception as exc:  # a source serves every camera: it must survive this
        log.error(
            "Could not queue the upload from %s (%s): %s (%s)",
            upload.camera,
            upload.remote_ip,
            upload.original_name,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return None
    return item_id


def write_new_file(path: Path, data: bytes) -> None:
    """Write and fsync `path`, a unique name (never over another upload), in its day folder.
    The clean-up after an analysed upload removes that folder when it is empty: if it does so
    between the mkdir and the open, the folder is made again (FOLDER_ATTEMPTS times at most)."""
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
        return
