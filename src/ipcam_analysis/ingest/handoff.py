"""Handing a received upload to the queue, as every source does before acknowledging it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress

from ipcam_analysis.values import Upload


def queue_upload(
    upload: Upload, on_upload: Callable[[Upload], int], log: logging.Logger
) -> int | None:
    """The upload's committed queue id, or None (logged in one line) when the queue cannot
    take it: the source then refuses the upload instead of acknowledging it, and its file is
    deleted. The camera keeps the picture and sends it again (a 4xx reply asks for that); a
    copy kept here as well would be analysed, and alerted on, twice."""
    try:
        return on_upload(upload)
    except Exception as exc:  # a source serves every camera: it must survive this
        with suppress(OSError):
            upload.path.unlink(missing_ok=True)
        log.error(
            "Could not queue the upload from %s (%s): %s (%s)",
            upload.camera,
            upload.remote_ip,
            upload.original_name,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        return None
